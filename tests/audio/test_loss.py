"""5% of a speaker's packets lost: speech still matches, and the delay does not creep."""

from __future__ import annotations

import asyncio
from pathlib import Path

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import ClipSource, WavSink, load_audio
from p2pspaces.core.identity import Identity
from p2pspaces.node import Node
from p2pspaces.node.config import Faults, NodeConfig

from ..net.conftest import LOOPBACK
from .signals import chirp

MINUTE = 60.0
WINDOW = 10 * SAMPLE_RATE


async def test_speech_survives_five_percent_loss_for_a_minute_without_delay_creep(
    tmp_path: Path,
) -> None:
    clip = chirp(3.0)
    host = Node(
        Identity.generate(), NodeConfig("Hana", LOOPBACK), source=ClipSource(clip, loop=True)
    )
    lee = Node(
        Identity.generate(),
        NodeConfig("Lee", LOOPBACK, faults=Faults(drop=0.05)),
        sink=WavSink(tmp_path / "lee.wav"),
    )
    try:
        await host.start()
        await lee.start()
        room = await host.host("Lossy")
        await lee.join(room.hex())
        await asyncio.sleep(MINUTE + 2)
    finally:
        await lee.stop()
        await host.stop()
    stream_stats = [s.stats for s in lee.audio.streams.values()]
    recording = load_audio(tmp_path / "lee.wav")
    first = align(recording[SAMPLE_RATE : SAMPLE_RATE + WINDOW], clip)
    last = align(recording[-WINDOW - SAMPLE_RATE // 2 : -SAMPLE_RATE // 2], clip)
    assert first.correlation >= 0.6 and last.correlation >= 0.6, (first, last, stream_stats)
    # Where the clip starts inside each window, modulo the clip's length, tells the delay: the
    # same at the end of the minute as at its start (within one frame) means no creep.
    start_first = (SAMPLE_RATE + first.lag) % len(clip)
    start_last = (len(recording) - WINDOW - SAMPLE_RATE // 2 + last.lag) % len(clip)
    drift = (start_last - start_first + len(clip) // 2) % len(clip) - len(clip) // 2
    assert abs(drift) <= SAMPLE_RATE // 50, (drift, stream_stats)
