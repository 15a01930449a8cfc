"""Speech across separate processes on three hosts: recordings match the source."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import load_audio
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.testing.lan import Lan, NodeProcess
from p2pspaces.testing.signals import speech

pytestmark = pytest.mark.netns


def test_two_listeners_record_what_the_speaker_says(lan3: Lan, tmp_path: Path) -> None:
    source_path = speech(tmp_path / "speech.wav")
    source = load_audio(source_path)
    host = NodeProcess(
        lan3.command(
            0,
            "start",
            "--headless",
            "--name",
            "Hana",
            "--home",
            str(tmp_path / "h"),
            "--host",
            "Talk",
            "--input",
            f"file:{source_path}?loop",
            "--output",
            "none",
        ),
        tmp_path / "host.log",
    )
    listeners = [
        NodeProcess(
            lan3.command(
                i,
                "start",
                "--headless",
                "--name",
                name,
                "--home",
                str(tmp_path / name),
                "--join",
                "Talk",
                "--input",
                "none",
                "--output",
                f"file:{tmp_path / name}.wav",
            ),
            tmp_path / f"{name}.log",
        )
        for i, name in ((1, "ann"), (2, "bob"))
    ]
    nodes = [host, *listeners]
    try:
        for listener in listeners:
            listener.wait_for("joined")
            listener.wait_for("speaking", lambda e: e["name"] == "Hana")
        time.sleep(2.5 * len(source) / SAMPLE_RATE)  # hear the clip at least twice over
        host.send(cmd="request", action="mute")  # self-mute: sending stops at once
        for listener in listeners:
            listener.wait_for("quiet", lambda e: e["name"] == "Hana")
        time.sleep(2.0)
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0, 0, 0]
    for name in ("ann", "bob"):
        recording = load_audio(tmp_path / f"{name}.wav")
        alignment = align(recording[: -2 * SAMPLE_RATE], source)
        assert alignment.correlation >= 0.8, (name, alignment)
        assert alignment.overlap == len(source)
        tail = recording[-int(1.5 * SAMPLE_RATE) :]
        assert rms_dbfs(tail) < -70, f"{name} still heard the host after self-mute"
        assert np.abs(recording).max() > 3000
