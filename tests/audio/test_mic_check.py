"""The microphone check (issue 21 item 4): a few seconds of the input as the room would get
it, played back here only, and a verdict in words."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import ClipSource, WavSink, load_audio
from p2pspaces.core.events import MicCheck
from p2pspaces.testing.signals import chirp


async def test_a_check_plays_the_voice_back_and_says_how_it_sounds(
    nodes: Callable[..., Any], tmp_path: Path
) -> None:
    voice = chirp(6.0)  # a talker at a usual level, for longer than the check
    me = await nodes("Me", source=ClipSource(voice, loop=True), sink=WavSink(tmp_path / "me.wav"))
    done = await me.voice.mic_check(1.0)
    told = [e.stage for e in await _events(me) if isinstance(e, MicCheck)]
    assert told == ["recording", "playing", "done"]
    assert (done.verdict, done.peak_db > -20) == ("good", True)
    await me.stop()
    played = load_audio(tmp_path / "me.wav")
    loud = int(np.argmax(np.abs(played) > 3000))  # the playback: the rest was silence
    piece = played[loud : loud + SAMPLE_RATE // 2]
    assert len(piece) == SAMPLE_RATE // 2, "nothing was played back"
    found = align(np.tile(voice, 2), piece)  # what was played back is the recorded voice
    assert found.correlation > 0.9


async def test_a_quiet_or_silent_microphone_is_told_so(nodes: Callable[..., Any]) -> None:
    quiet = await nodes("Quiet", source=ClipSource((chirp(4.0) * 0.005).astype(np.int16)))
    assert (await quiet.voice.mic_check(0.5)).verdict == "quiet"
    silent = await nodes("Silent", source=ClipSource(np.zeros(SAMPLE_RATE * 4, np.int16)))
    done = await silent.voice.mic_check(0.5)
    assert done.verdict == "silent" and "microphone" in done.words
    nothing = await nodes("Nothing")  # no input at all (--input none)
    done = await nothing.voice.mic_check(0.5)
    assert done.verdict == "silent" and "--input" in done.words


async def _events(node: Any) -> list[Any]:
    seen = []
    while not node.events.empty():
        seen.append(node.events.get_nowait())
    return seen
