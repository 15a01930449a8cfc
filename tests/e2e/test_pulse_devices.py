"""The real device path: PortAudio capture and playback through PulseAudio null sinks.

PulseAudio with two null sinks stands in for a sound card: speech played into ``mic_feed``
comes out of its monitor as the speaker's microphone (``--input mic:pulse``); the listener
plays to ``room_out`` (``--output speaker:pulse``), whose monitor we record and check.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pspaces.audio.analysis import chunk_correlations
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.lan import NodeProcess
from p2pspaces.testing.pulse import Unavailable, pulse_server
from p2pspaces.testing.signals import speech

from ..needs import unavailable

LOOPBACK = "127.0.0.1"


@pytest.fixture
def pulse(tmp_path: Path) -> Iterator[dict[str, str]]:
    try:
        with pulse_server(tmp_path) as env:
            yield env
    except Unavailable as exc:
        unavailable(str(exc))


def test_microphone_to_speaker_through_real_devices(pulse: dict[str, str], tmp_path: Path) -> None:
    source_path = speech(tmp_path / "speech.wav")
    common = [sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", LOOPBACK]
    host = NodeProcess(
        [
            *common,
            "--name",
            "Hana",
            "--home",
            str(tmp_path / "h"),
            "--host",
            "Pulse",
            "--input",
            "mic:pulse",
            "--process",  # the device path exactly: voice processing is tested on its own
            "off",
            "--output",
            "none",
        ],
        tmp_path / "host.log",
        env=pulse | {"PULSE_SOURCE": "mic_feed.monitor"},
    )
    ann = NodeProcess(
        [
            *common,
            "--name",
            "Ann",
            "--home",
            str(tmp_path / "a"),
            "--join",
            "Pulse",
            "--input",
            "none",
            "--output",
            "speaker:pulse",
        ],
        tmp_path / "ann.log",
        env=pulse | {"PULSE_SINK": "room_out"},
    )
    heard = tmp_path / "heard.wav"
    recorder = subprocess.Popen(
        [
            "parecord",
            "--device=room_out.monitor",
            "--rate=48000",
            "--channels=1",
            "--file-format=wav",
            str(heard),
        ],
        env=pulse,
    )
    try:
        ann.wait_for("joined")
        for round_ in range(2):
            player = subprocess.Popen(["paplay", "--device=mic_feed", str(source_path)], env=pulse)
            if round_ == 0:
                assert ann.wait_for("speaking")["name"] == "Hana"
            assert player.wait(timeout=30) == 0
        time.sleep(0.5)
    finally:
        recorder.terminate()
        recorder.wait(timeout=10)
        statuses = [ann.stop(), host.stop()]
    assert statuses == [0, 0]
    scores = chunk_correlations(load_audio(heard), load_audio(source_path))
    assert len(scores) >= 3
    assert statistics.median(scores) >= 0.8, scores
