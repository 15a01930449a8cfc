#!/usr/bin/env python3
"""CPU of a speaker sending to N listeners: p2pspaces' direct fan-out against aiortc's paths.

The speaker runs in this process; the N listeners are real aiortc peer connections in a second
process (a "farm") that receive the RTP and drop it, so that only the speaker's CPU is measured.
SDP goes between the two processes over a pipe.  For each N the speaker sends a tone for a warm-up
and then a measured window; CPU is this process's CPU time (all threads) over wall time, in % of
one core.

* direct (p2pspaces): the Broadcaster encodes each 20 ms frame once and writes each connection's
  RTP header itself, straight to its DTLS transport (SRTP, then the socket).
* encoded track: one encode per frame, the same packet queued to a PacketTrack per peer, which
  aiortc's RTCRtpSender only packetizes (p2pspaces' path before the direct one).
* per connection: aiortc's default, a track of raw frames per peer connection, each RTCRtpSender
  encoding on its own (96 kbit/s stereo in aiortc).
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import subprocess
import sys
import time
from typing import Any

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.fanout import Broadcaster, PacketTrack
from p2pspaces.audio.opus import Encoder
from p2pspaces.net import ice
from p2pspaces.net.receive import take_rtp

LOOPBACK = "127.0.0.1"
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE


def tone_frame(index: int) -> np.ndarray:
    t = (np.arange(FRAME_SAMPLES) + index * FRAME_SAMPLES) / SAMPLE_RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


# --- the farm: N receiving peer connections in their own process ----------------------------


async def farm() -> None:
    ice.use_addresses((LOOPBACK,))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 22)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    peers: list[RTCPeerConnection] = []
    received = {"packets": 0}

    async def drop(packet: Any, arrival_time_ms: int) -> None:
        received["packets"] += 1

    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "close":
            for pc in peers:
                await pc.close()
            peers.clear()
            print(json.dumps({"packets": received["packets"]}), flush=True)
            received["packets"] = 0
            continue
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        await pc.setRemoteDescription(RTCSessionDescription(request["sdp"], "offer"))
        for transceiver in pc.getTransceivers():
            take_rtp(transceiver.receiver, drop)
        await pc.setLocalDescription(await pc.createAnswer())
        peers.append(pc)
        print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)


# --- the speaker ---------------------------------------------------------------------------


class RawTrack(MediaStreamTrack):
    """Raw frames for aiortc to encode itself (the per-connection baseline)."""

    kind = "audio"

    def __init__(self, frames: asyncio.Queue[av.AudioFrame]) -> None:
        super().__init__()
        self.frames = frames

    async def recv(self) -> av.AudioFrame:
        return await self.frames.get()


class Farm:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--farm"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


async def connect(
    farm_: Farm, track: MediaStreamTrack | None, attach: Any = None
) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver(track or "audio", direction="sendonly")
    if attach is not None:
        attach(transceiver.sender)
    opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == "audio/opus"]
    transceiver.setCodecPreferences(opus)
    await pc.setLocalDescription(await pc.createOffer())
    answer = await asyncio.to_thread(farm_.ask, {"op": "offer", "sdp": pc.localDescription.sdp})
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return pc


async def connected(pc: RTCPeerConnection) -> None:
    """Wait until a peer connection is connected."""
    done = asyncio.Event()

    def check() -> None:
        if pc.connectionState == "connected":
            done.set()

    pc.on("connectionstatechange", check)
    check()
    await asyncio.wait_for(done.wait(), 20)


async def send(
    to: Broadcaster | list[PacketTrack] | list[asyncio.Queue[av.AudioFrame]],
    index: int,
    encoder: Encoder,
) -> None:
    """Hand frame ``index`` to the broadcaster, to every packet track (encoded once here), or to
    every raw track."""
    frame = tone_frame(index)
    if isinstance(to, Broadcaster):
        await to.send(frame, index * FRAME_SAMPLES)
        return
    if to and isinstance(to[0], PacketTrack):
        payload = encoder.encode(frame)
        for track in to:
            assert isinstance(track, PacketTrack)
            track.offer(payload, index * FRAME_SAMPLES)
        return
    for queue in to:
        assert isinstance(queue, asyncio.Queue)
        av_frame = av.AudioFrame.from_ndarray(frame.reshape(1, -1), format="s16", layout="mono")
        av_frame.sample_rate = SAMPLE_RATE
        av_frame.pts = index * FRAME_SAMPLES
        av_frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(av_frame)


async def measure(farm_: Farm, peers: int, mode: str, warmup: float, window: float) -> float:
    broadcaster = Broadcaster()
    encoder = Encoder()
    queues: list[asyncio.Queue[av.AudioFrame]] = []
    tracks: list[PacketTrack] = []
    pcs = []
    for index in range(peers):
        if mode == "direct":
            peer = bytes([index % 256, index // 256]) * 16
            pcs.append(await connect(farm_, None, lambda s, p=peer: broadcaster.attach(p, s)))
            continue
        if mode == "track":
            tracks.append(PacketTrack())
            track: MediaStreamTrack = tracks[-1]
        else:
            queues.append(asyncio.Queue(maxsize=5))
            track = RawTrack(queues[-1])
        pcs.append(await connect(farm_, track))
    for pc in pcs:
        await connected(pc)
    start = time.monotonic()
    cpu_start = wall_start = None
    index = 0
    while True:
        now = time.monotonic()
        if cpu_start is None and now - start >= warmup:
            cpu_start, wall_start = time.process_time(), now
        if wall_start is not None and now - wall_start >= window:
            break
        to: Broadcaster | list[PacketTrack] | list[asyncio.Queue[av.AudioFrame]]
        to = broadcaster if mode == "direct" else tracks if mode == "track" else queues
        await send(to, index, encoder)
        index += 1
        await asyncio.sleep(max(0.0, start + index * FRAME_S - time.monotonic()))
    assert cpu_start is not None and wall_start is not None
    share = (time.process_time() - cpu_start) / (time.monotonic() - wall_start)
    for pc in pcs:
        await pc.close()
    delivered = await asyncio.to_thread(farm_.ask, {"op": "close"})
    expected = peers * window / FRAME_S
    if delivered["packets"] < 0.5 * expected:
        print(f"  warning: the farm got only {delivered['packets']} packets of ~{expected:.0f}")
    return 100 * share


async def speaker(counts: list[int], warmup: float, window: float) -> None:
    ice.use_addresses((LOOPBACK,))
    farm_ = Farm()
    try:
        print(f"speaker CPU, % of one core ({os.cpu_count()} cores), {window:.0f} s windows")
        print("   N   direct (ours)   encoded track   per connection   direct/track")
        for peers in counts:
            direct = await measure(farm_, peers, "direct", warmup, window)
            track = await measure(farm_, peers, "track", warmup, window)
            each = await measure(farm_, peers, "each", warmup, window)
            print(
                f"{peers:4}   {direct:12.1f}%   {track:12.1f}%   {each:13.1f}%   "
                f"{direct / track:12.2f}"
            )
    finally:
        farm_.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--counts", default="1,4,16,32,64")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=8.0)
    args = parser.parse_args()
    if args.farm:
        asyncio.run(farm())
        return
    counts = [int(n) for n in args.counts.split(",")]
    asyncio.run(speaker(counts, args.warmup, args.window))


if __name__ == "__main__":
    main()
