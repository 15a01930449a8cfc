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

import numpy as np
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


def _echo_back_db(pulse: dict[str, str], tmp_path: Path, process: str) -> tuple[float, float]:
    """Bob's laptop in the loudest room there is: his microphone hears his own speaker
    directly (the sink's monitor).  Hana speaks; Bob is on stage.  Returns dBFS of what Bob's
    speaker played and of what came back to Hana from Bob, over the last 5 s."""
    source_path = speech(tmp_path / "speech.wav")
    common = [sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", LOOPBACK]
    hana = NodeProcess(
        [*common, "--name", "Hana", "--home", str(tmp_path / f"h-{process}"), "--host",
         f"Echo {process}", "--input", f"file:{source_path}?loop",
         "--output", f"file:{tmp_path / f'hana-{process}.wav'}"],
        tmp_path / f"hana-{process}.log",
    )  # fmt: skip
    bob = NodeProcess(
        [*common, "--name", "Bob", "--home", str(tmp_path / f"b-{process}"), "--join",
         f"Echo {process}", "--input", "mic:pulse", "--output", "speaker:pulse",
         "--process", process],
        tmp_path / f"bob-{process}.log",
        env=pulse | {"PULSE_SOURCE": "room_out.monitor", "PULSE_SINK": "room_out"},
    )  # fmt: skip
    played = tmp_path / f"played-{process}.wav"
    recorder = subprocess.Popen(
        ["parecord", "--device=room_out.monitor", "--rate=48000", "--channels=1",
         "--file-format=wav", str(played)],
        env=pulse,
    )  # fmt: skip
    try:
        bob.wait_for("joined")
        hana.send(cmd="request", action="invite_speaker", target="Bob")
        bob.wait_for("state", lambda e: any(m["invited"] for m in e["members"]))
        bob.send(cmd="request", action="accept_invite")
        hana.wait_for("state", lambda e: any(m["name"] == "Bob" and m["role"] == "speaker"
                                             for m in e["members"]))  # fmt: skip
        time.sleep(12)  # the canceller converges
    finally:
        recorder.terminate()
        recorder.wait(timeout=10)
        statuses = [bob.stop(), hana.stop()]
    assert statuses == [0, 0]

    def level(path: Path) -> float:
        samples = load_audio(path).astype(float)[-5 * 48_000 :]
        return float(10 * np.log10(np.mean(samples**2) / 32768**2 + 1e-12))

    return level(played), level(tmp_path / f"hana-{process}.wav")


def test_a_laptops_own_speaker_is_not_sent_back_to_the_room(
    pulse: dict[str, str], tmp_path: Path
) -> None:
    """Real devices (PortAudio on PulseAudio): without processing Hana hears her own voice
    come back from Bob's laptop; with it (the default for a microphone) she does not."""
    raw_played, raw_back = _echo_back_db(pulse, tmp_path, "off")
    played, back = _echo_back_db(pulse, tmp_path, "auto")
    print(f"off:  Bob's speaker {raw_played:.1f} dBFS, back to Hana {raw_back:.1f} dBFS")
    print(f"auto: Bob's speaker {played:.1f} dBFS, back to Hana {back:.1f} dBFS")
    assert raw_back > raw_played - 10
    assert back < played - 25, (played, back)
