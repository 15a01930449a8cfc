"""Audio between real nodes on loopback: heard intact, and only from unmuted speakers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import ClipSource, ToneSource, WavSink, load_audio
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.core.events import Speaking, StateChanged
from p2pspaces.core.wire import Action, ActionKind

from ..net.conftest import LOOPBACK, next_event
from .signals import chirp


async def test_listeners_hear_the_speaker_intact(nodes: Callable[..., Any], tmp_path: Path) -> None:
    clip = chirp(3.0)
    gate = asyncio.Event()
    source = ClipSource(clip, gate=gate, hold=True)
    host = await nodes("Hana", source=source)
    ann = await nodes("Ann", sink=WavSink(tmp_path / "ann.wav"))
    bob = await nodes("Bob", sink=WavSink(tmp_path / "bob.wav"))
    room = await host.host("Listen")
    await ann.join(room.hex())
    await bob.join(room.hex())
    gate.set()
    speaking = await next_event(ann, Speaking)
    assert speaking.member == host.node_id
    await asyncio.wait_for(source.finished.wait(), 10)
    await asyncio.sleep(0.3)
    await ann.stop()
    await bob.stop()
    for name in ("ann", "bob"):
        alignment = align(load_audio(tmp_path / f"{name}.wav"), clip)
        assert alignment.correlation >= 0.8, name
        assert alignment.overlap == len(clip)


def _window_db(recording: np.ndarray, start_s: float, stop_s: float) -> float:
    return rms_dbfs(recording[int(start_s * SAMPLE_RATE) : int(stop_s * SAMPLE_RATE)])


async def test_a_muted_speaker_is_silent_and_a_rogue_listener_is_not_heard(
    nodes: Callable[..., Any], tmp_path: Path
) -> None:
    host = await nodes("Hana")
    sam = await nodes("Sam", source=ToneSource(660))
    rogue = await nodes("Rex", source=ToneSource(1500))
    lee = await nodes("Lee", sink=WavSink(tmp_path / "lee.wav"))
    room = await host.host("Order")
    for node in (sam, rogue, lee):
        await node.join(room.hex())
    await host.request(Action(ActionKind.INVITE_SPEAKER, sam.node_id))
    await next_event(sam, StateChanged, lambda e: e.state.members[sam.node_id].invited)
    await sam.request(Action(ActionKind.ACCEPT_INVITE))
    # Rex is a listener whose client sends audio anyway, over a link it makes to Lee.
    rogue.audio.may_send = lambda: True
    if rogue.node_id not in lee.mesh.links:
        await rogue.mesh.connect(LOOPBACK, lee.port)
    await next_event(lee, Speaking, lambda e: e.member == sam.node_id)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(1.5)
    await host.request(Action(ActionKind.MUTE, sam.node_id))
    await next_event(lee, StateChanged, lambda e: e.state.members[sam.node_id].muted)
    muted_at = loop.time() - started
    await asyncio.sleep(1.5)
    total = loop.time() - started
    await lee.stop()
    recording = load_audio(tmp_path / "lee.wav")
    heard = recording[-int(total * SAMPLE_RATE) :]
    unmuted = heard[: int(1.4 * SAMPLE_RATE)].astype(float)
    spectrum = np.abs(np.fft.rfft(unmuted))
    freqs = np.fft.rfftfreq(len(unmuted), 1 / SAMPLE_RATE)
    assert freqs[np.argmax(spectrum)] == pytest.approx(660, abs=5)  # Sam, not Rex's 1500 Hz
    assert lee.audio.refused_packets > 0  # Rex's packets did arrive, and were dropped
    assert _window_db(heard, 0.2, 1.3) > -30  # Sam audible while unmuted
    assert _window_db(heard, muted_at + 0.3, total - 0.1) < -70  # ...and silent once muted
