"""Two real nodes in one room of air: what Bob's laptop plays (Hana's voice) reaches Bob's own
microphone through the room, and Bob is on stage.  Without voice processing, Hana hears her
own voice come back from Bob; with it, she does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.devices import ClipSource, WavSink, load_audio
from p2pspaces.audio.opus import Pcm
from p2pspaces.audio.processing import ProcessingSettings, with_voice_processing
from p2pspaces.core.events import StateChanged
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.testing.signals import speech

from ..net.conftest import next_event
from .test_processing import room_echo


class Air:
    """One laptop's speaker and microphone in a room: every frame the speaker plays reaches
    the microphone through the room's response (overlap-added).  Like a sound card's input
    and output, the two share one clock: the microphone takes a frame each time the speaker
    plays one."""

    def __init__(self, response: np.ndarray) -> None:
        self.response = response
        self.air = np.zeros(SAMPLE_RATE * 60)
        self.played = 0
        self.heard = 0
        self._played = asyncio.Event()

    def play(self, frame: Pcm) -> None:
        start = self.played * FRAME_SAMPLES
        sound = np.convolve(frame.astype(np.float64), self.response)
        end = min(len(self.air), start + len(sound))
        self.air[start:end] += sound[: end - start]
        self.played += 1
        self._played.set()

    async def listen(self) -> Pcm:
        """The next frame of the room's sound, once the speaker has played past it."""
        while self.heard >= self.played:
            self._played.clear()
            await self._played.wait()
        start = self.heard * FRAME_SAMPLES
        self.heard += 1
        return np.clip(self.air[start : start + FRAME_SAMPLES], -32768, 32767).astype(np.int16)


class Speaker:
    label = "room speaker"

    def __init__(self, air: Air) -> None:
        self.air = air

    def write(self, frame: Pcm) -> None:
        self.air.play(frame)

    def close(self) -> None:
        pass


class Microphone:
    label = "room microphone"

    def __init__(self, air: Air) -> None:
        self.air = air

    async def frames(self) -> AsyncIterator[Pcm]:
        while True:
            yield await self.air.listen()

    def close(self) -> None:
        pass


def _impulse_response() -> np.ndarray:
    impulse = np.zeros(int(0.4 * SAMPLE_RATE))
    impulse[0] = 1.0
    return room_echo(impulse, level=0.5)


async def _echo_heard_by_hana(
    nodes: Callable[..., Any], tmp_path: Path, processed: bool
) -> tuple[float, float]:
    """dBFS of Hana's voice as Bob's room plays it, and as it comes back to Hana from Bob."""
    clip = load_audio(speech(tmp_path / "speech.wav"))
    heard = tmp_path / f"hana-{'processed' if processed else 'raw'}.wav"
    air = Air(_impulse_response())
    source: Any = Microphone(air)
    sink: Any = Speaker(air)
    if processed:
        source, sink, _ = with_voice_processing(source, sink, ProcessingSettings())
    hana = await nodes("Hana", source=ClipSource(clip, loop=True), sink=WavSink(heard))
    bob = await nodes("Bob", source=source, sink=sink)
    room = await hana.host("Echo")
    await bob.join(room.hex())
    await hana.request(Action(ActionKind.INVITE_SPEAKER, bob.node_id))
    await next_event(bob, StateChanged, lambda e: e.state.members[bob.node_id].invited)
    await bob.request(Action(ActionKind.ACCEPT_INVITE))
    await asyncio.sleep(12)  # the canceller converges; then the last 6 s are measured
    await hana.stop()
    back = load_audio(heard).astype(np.float64)[-6 * SAMPLE_RATE :]
    played = air.air[(air.played - 300) * FRAME_SAMPLES : air.played * FRAME_SAMPLES]

    def level(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(x**2) / 32768**2 + 1e-12))

    return level(played), level(back)


async def test_a_speakers_own_laptop_does_not_send_the_room_back_its_voice(
    nodes: Callable[..., Any], tmp_path: Path
) -> None:
    raw_played, raw_back = await _echo_heard_by_hana(nodes, tmp_path, processed=False)
    played, back = await _echo_heard_by_hana(nodes, tmp_path, processed=True)
    print(f"unprocessed: Bob's room at {raw_played:.1f} dBFS, back to Hana at {raw_back:.1f}")
    print(f"processed:   Bob's room at {played:.1f} dBFS, back to Hana at {back:.1f}")
    assert raw_back > raw_played - 10  # without processing, Hana hears herself come back
    assert back < played - 30, (played, back)  # with it, the echo is cancelled
