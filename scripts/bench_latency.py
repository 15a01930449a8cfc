#!/usr/bin/env python3
"""Mouth-to-ear delay on loopback: p2pspaces across processes, plain aiortc, and Mumble.

What is measured, the same way for each: the time from a 20 ms PCM frame handed to the
speaker's pipeline to the same audio leaving the listener's playout (the first sample of the
frame, found by cross-correlating the listener's output with the source; Opus's own 6.5 ms
look-ahead is therefore included).  Every time is CLOCK_MONOTONIC, shared by all processes.

* p2pspaces: two ``p2pspaces start --headless`` processes (speaker with ``--input file:``,
  listener with ``--output file:``), each writing its frame log (``--frame-log``); ``--runs``
  times (default 10), each run's median from the last whole loop of the clip (the steady
  state), then the median of the runs and their spread.  ``--jitter-ms 20`` injects a random
  0-20 ms delay on every packet the listener receives (``--jitter-audio``).
* plain aiortc: one RTCPeerConnection pair, aiortc's own Opus encoder and its default receive
  path (jitter buffer + decoder), frames taken from the remote track as soon as it yields them;
  then the same with one RTP packet dropped, to show what a single loss does to its delay.
* Mumble: ``../shared/tools/mumble-baseline/run.sh --phases latency`` if murmurd and the pymumble
  venv are installed (see its README); it measures frame handed to pymumble -> decoded PCM.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from p2pspaces.app.demo import speech_like_clip
from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.analysis import align, frame_delays
from p2pspaces.audio.devices import load_audio
from p2pspaces.net import ice
from p2pspaces.net.receive import take_rtp

LOOPBACK = "127.0.0.1"
HERE = Path(__file__).resolve().parent
MUMBLE = HERE.parent.parent / "shared" / "tools" / "mumble-baseline" / "run.sh"


def stats(delays_s: list[float]) -> str:
    ms = sorted(d * 1000 for d in delays_s)
    if not ms:
        return "no frames matched"
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):6.1f} ms   p95 {p95:6.1f} ms   ({len(ms)} frames)"


def best_delays(
    recording: np.ndarray, clip: np.ndarray, sent: dict[int, float], ticks: list[float]
) -> tuple[list[float], float]:
    """Delays for the last whole occurrence of the clip (the steady state, after start-up);
    the speaker loops the clip, so try each loop's pts, newest first, until the delays are
    plausible (0 to 1 s)."""
    tail = 2 * (len(clip) // FRAME_SAMPLES) + 50  # two loops and a second: one whole one
    start = max(0, len(recording) // FRAME_SAMPLES - tail)
    recording, ticks = recording[start * FRAME_SAMPLES :], ticks[start:]
    alignment = align(recording, clip)
    loop_frames = len(clip) // FRAME_SAMPLES
    best: list[float] = []
    for loop_index in range(200, -1, -1):
        first_pts = loop_index * loop_frames * FRAME_SAMPLES
        if first_pts not in sent:
            continue
        delays = frame_delays(alignment, sent, first_pts, ticks, loop_frames)
        if delays and 0 <= statistics.median(delays) < 1.0:
            best = delays
            break
    return best, alignment.correlation


def ours(
    clip_path: Path, clip: np.ndarray, seconds: float, work: Path, extra: tuple[str, ...] = ()
) -> float:
    """One run of two p2pspaces processes; returns its median delay (ms)."""
    base = [sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", LOOPBACK]
    speaker = subprocess.Popen(
        [
            *base,
            "--name",
            "Speaker",
            "--home",
            str(work / "s"),
            "--host",
            "Latency",
            "--input",
            f"file:{clip_path}?loop",
            "--output",
            "none",
            "--frame-log",
            str(work / "speaker.json"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    listener = subprocess.Popen(
        [
            *base,
            "--name",
            "Listener",
            "--home",
            str(work / "l"),
            "--join",
            "Latency",
            "--input",
            "none",
            "--output",
            f"file:{work / 'heard.wav'}",
            "--frame-log",
            str(work / "listener.json"),
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    for proc in (listener, speaker):
        proc.terminate()
        proc.wait(timeout=30)
    sent = {int(k): v for k, v in json.loads((work / "speaker.json").read_text())["sent"].items()}
    ticks = json.loads((work / "listener.json").read_text())["ticks"]
    delays, correlation = best_delays(load_audio(work / "heard.wav"), clip, sent, ticks)
    print(f"p2pspaces, 2 processes        {stats(delays)}   correlation {correlation:.3f}")
    if delays:
        half = len(delays) // 2  # creep: the second half against the first
        early, late = statistics.median(delays[:half]), statistics.median(delays[half:])
        print(f"  first half {early * 1000:.1f} ms, second half {late * 1000:.1f} ms")
    return statistics.median(delays) * 1000 if delays else float("nan")


class ClipTrack(MediaStreamTrack):
    """A real-time audio track of the looped clip, noting when each frame is handed over."""

    kind = "audio"

    def __init__(self, clip: np.ndarray) -> None:
        super().__init__()
        self.clip = clip
        self.index = 0
        self.sent: dict[int, float] = {}
        self.start: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.index * FRAME_SAMPLES / SAMPLE_RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frames = len(self.clip) // FRAME_SAMPLES
        position = (self.index % frames) * FRAME_SAMPLES
        samples = self.clip[position : position + FRAME_SAMPLES]
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.index * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self.sent[frame.pts] = time.monotonic()
        self.index += 1
        return frame


async def plain_aiortc(clip: np.ndarray, seconds: float, drop_one: bool) -> None:
    ice.use_addresses((LOOPBACK,))
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = ClipTrack(clip)
    sender.addTrack(track)
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    receiver.on("track", received.set_result)
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    remote = await received
    if drop_one:
        rtp_receiver = receiver.getTransceivers()[0].receiver
        original = rtp_receiver._handle_rtp_packet
        count = {"n": 0}

        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            count["n"] += 1
            if count["n"] != 100:  # lose exactly one packet, 2 s in
                await original(packet, arrival_time_ms)

        take_rtp(rtp_receiver, lossy)
    chunks, ticks = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await remote.recv()
        assert isinstance(frame, av.AudioFrame)
        data = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
        for start in range(0, len(data), FRAME_SAMPLES):
            ticks.append(time.monotonic())
            chunks.append(data[start : start + FRAME_SAMPLES].astype(np.int16))
    await sender.close()
    await receiver.close()
    recording = np.concatenate(chunks)
    first_half = len(recording) // 2
    if drop_one:
        recording, ticks = recording[first_half:], ticks[first_half // FRAME_SAMPLES :]
    delays, correlation = best_delays(recording, clip, track.sent, ticks)
    label = "plain aiortc, 1 packet lost  " if drop_one else "plain aiortc                 "
    print(f"{label} {stats(delays)}   correlation {correlation:.3f}")


def mumble(runs: int) -> None:
    default = "/tmp/mumble/venv/bin/python"  # noqa: S108 - the baseline README's location
    python = Path(os.environ.get("MUMBLE_BENCH_PY", default))
    if not MUMBLE.exists() or not python.exists():
        print(
            "Mumble: not installed here (see ../shared/tools/mumble-baseline/README.md); its"
            " README reports 17.1 ms median stock, 8.3 ms tuned, on this kind of machine"
        )
        return
    done = subprocess.run(
        [str(MUMBLE), "--phases", "latency", "--runs", str(runs)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        print(f"Mumble: run.sh failed: {done.stderr.strip()[-300:]}")
        return
    latency = json.loads(done.stdout)["latency"]
    for variant in ("stock", "tuned"):
        runs_ = latency[variant]["per_run"]
        medians = [run["e2e_ms"]["median"] for run in runs_]
        p95s = [run["e2e_ms"]["p95"] for run in runs_]
        print(
            f"Mumble ({variant:5}) murmur+pymumble median {statistics.median(medians):6.1f} ms   "
            f"p95 {statistics.median(p95s):6.1f} ms   ({len(runs_)} run(s) of 40 bursts;"
            " no jitter buffer: a floor)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--mumble-runs", type=int, default=1)
    parser.add_argument("--no-mumble", action="store_true")
    parser.add_argument("--runs", type=int, default=10, help="p2pspaces runs (each its median)")
    parser.add_argument("--no-aiortc", action="store_true")
    parser.add_argument(
        "--jitter-ms", type=float, default=0.0, help="inject this much random delay per packet"
    )
    args = parser.parse_args()
    clip = speech_like_clip(3.0)
    with tempfile.TemporaryDirectory(prefix="p2ps-latency-") as folder:
        work = Path(folder)
        clip_path = work / "clip.wav"
        container = av.open(str(clip_path), "w")
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(clip.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        container.close()
        print(f"mouth-to-ear on loopback, {args.seconds:.0f} s of a looped 3 s voice-like clip")
        extra = ("--jitter-audio", str(args.jitter_ms)) if args.jitter_ms else ()
        medians = []
        for run in range(args.runs):
            print(f"run {run + 1}:")
            medians.append(ours(clip_path, clip, args.seconds, work, extra))
        spread = max(medians) - min(medians)
        listed = ", ".join(f"{m:.1f}" for m in medians)
        print(
            f"p2pspaces per-run medians (ms): {listed}; median of runs "
            f"{statistics.median(medians):.1f}, worst {max(medians):.1f}, spread {spread:.1f}"
        )
    if not args.no_aiortc:
        asyncio.run(plain_aiortc(clip, args.seconds, drop_one=False))
        asyncio.run(plain_aiortc(clip, args.seconds, drop_one=True))
    if not args.no_mumble:
        mumble(args.mumble_runs)


if __name__ == "__main__":
    main()
