"""``p2pspaces demo``: a small Space on loopback that shows the whole path working.

Three real nodes in one process (real zeroconf, real aiortc, real Opus): a host who speaks a
generated clip and two listeners who record what they hear.  It prints discovery, the joins and
how long they took, who is speaking, the measured mouth-to-ear delay, and where the recordings
are; it exits non-zero with a reason if the audio did not arrive intact.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.analysis import align, frame_delays, seconds
from p2pspaces.audio.devices import ClipSource, WavSink, load_audio
from p2pspaces.audio.engine import FrameLog
from p2pspaces.audio.opus import Pcm
from p2pspaces.core.events import Event, Quiet, RoomFound, Speaking
from p2pspaces.core.identity import Identity
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

LOOPBACK = "127.0.0.1"
MIN_CORRELATION = 0.8


def speech_like_clip(seconds_long: float = 4.0, seed: int = 7) -> Pcm:
    """A deterministic voice-like clip: syllables of harmonic tones with pitch glides."""
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    total = int(seconds_long * SAMPLE_RATE)
    while sum(len(part) for part in out) < total:
        length = int(rng.uniform(0.12, 0.3) * SAMPLE_RATE)
        t = np.arange(length) / SAMPLE_RATE
        f0 = rng.uniform(110, 230) * (1 + rng.uniform(-0.15, 0.15) * t / t[-1])
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        voice = sum(np.sin(k * phase) / k**1.2 for k in range(1, 12))
        envelope = np.hanning(length)
        out.append(voice * envelope)
        out.append(np.zeros(int(rng.uniform(0.03, 0.12) * SAMPLE_RATE)))
    signal = np.concatenate(out)[:total]
    pcm: Pcm = (signal / np.max(np.abs(signal)) * 0.5 * 32767).astype(np.int16)
    return pcm


@dataclass
class ListenerResult:
    """What one listener heard."""

    name: str
    path: Path
    correlation: float
    delays_ms: list[float]


def _printer(label: str, say: Callable[[str], None]) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if isinstance(event, RoomFound) and not event.changed:
            say(f"  {label}: found {event.title!r} hosted by {event.host_name}")
        elif isinstance(event, Speaking):
            say(f"  {label}: {event.name} is speaking ({event.level_db:.0f} dBFS)")
        elif isinstance(event, Quiet):
            say(f"  {label}: {event.name} went quiet")

    return show


async def _pump(node: Node, show: Callable[[Event], None]) -> None:
    while True:
        show(await node.events.get())


async def run_demo(out_dir: Path, clip: Pcm, say: Callable[[str], None]) -> int:
    """Run the demo room; return the exit status."""
    gate = asyncio.Event()
    source = ClipSource(clip, gate=gate, hold=True, label="demo clip")
    sent = FrameLog()
    host = Node(Identity.generate(), NodeConfig("Host", LOOPBACK), source=source, frame_log=sent)
    listeners, received = [], []
    for name in ("Ada", "Ben"):
        sink = WavSink(out_dir / f"{name.lower()}.wav")
        log = FrameLog()
        node = Node(Identity.generate(), NodeConfig(name, LOOPBACK), sink=sink, frame_log=log)
        listeners.append(node)
        received.append(log)
    nodes = [host, *listeners]
    pumps = []
    try:
        for node in nodes:
            await node.start()
        say("Three nodes are up on loopback; the host opens a Space.")
        room_id = await host.host("p2pspaces demo")
        pumps = [asyncio.ensure_future(_pump(n, _printer(n.name, say))) for n in nodes]
        for node in listeners:
            start = time.perf_counter()
            await node.join(room_id.hex())
            say(f"  {node.name} joined in {(time.perf_counter() - start) * 1000:.0f} ms")
        say(f"The host speaks a {seconds(len(clip)):.1f} s clip; the listeners record it.")
        gate.set()
        await asyncio.wait_for(source.finished.wait(), seconds(len(clip)) + 5)
        await asyncio.sleep(0.5)
        for node in listeners:
            for stream in node.audio.streams.values():
                stats = stream.stats
                say(
                    f"  {node.name}: {stats.played} frames played, {stats.recovered} rebuilt "
                    f"from FEC, {stats.concealed} concealed, {stats.skipped} skipped to stay "
                    f"in time, {stats.late} late; target delay {stream.target_ms:.1f} ms"
                )
    finally:
        for pump in pumps:
            pump.cancel()
        for node in nodes:
            await node.stop()
    return _report((sent, received), listeners, source, clip, say)


def _report(
    logs: tuple[FrameLog, list[FrameLog]],
    listeners: list[Node],
    source: ClipSource,
    clip: Pcm,
    say: Callable[[str], None],
) -> int:
    results = []
    first_pts = (source.started_at or 0) * FRAME_SAMPLES
    sent, received = logs
    for node, log in zip(listeners, received, strict=True):
        sink = node.audio.sink
        path = sink.path if isinstance(sink, WavSink) else Path(sink.label)
        alignment = align(load_audio(path), clip)
        delays = frame_delays(
            alignment, sent.sent, first_pts, log.ticks, len(clip) // FRAME_SAMPLES
        )
        results.append(
            ListenerResult(node.name, path, alignment.correlation, [d * 1000 for d in delays])
        )
    say("Results:")
    status = 0
    for result in results:
        delay = (
            f"mouth-to-ear median {statistics.median(result.delays_ms):.1f} ms"
            if result.delays_ms
            else "no delay measured"
        )
        say(
            f"  {result.name}: recording {result.path} matches the clip "
            f"(correlation {result.correlation:.3f}); {delay}"
        )
        if result.correlation < MIN_CORRELATION:
            say(f"  FAILED: {result.name}'s recording does not match what the host said.")
            status = 1
    if status == 0:
        say("Audio arrived at both listeners, intact.")
    return status


def demo_clip(path: Path | None) -> Pcm:
    """The clip the host speaks: a file's audio, or the built-in generated one."""
    return load_audio(path) if path is not None else speech_like_clip()
