"""SIGKILL the host while a speaker talks: a co-host takes over, the listener never loses audio."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.devices import load_audio
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.testing.lan import Lan

pytestmark = pytest.mark.netns


def _longest_quiet_ms(samples: np.ndarray) -> int:
    frames = samples[: len(samples) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES)
    longest = run = 0
    for frame in frames:
        run = run + 1 if rms_dbfs(frame) < -50 else 0
        longest = max(longest, run)
    return longest * 20


def test_killing_the_host_hands_the_room_to_its_cohost(lan4: Lan, tmp_path: Path) -> None:
    host = lan4.headless(
        0, tmp_path, "Hana", "--host", "Resilient", "--input", "none", "--output", "none"
    )
    cora = lan4.headless(
        1, tmp_path, "Cora", "--join", "Resilient", "--input", "tone:700", "--output", "none"
    )
    sam = lan4.headless(
        2, tmp_path, "Sam", "--join", "Resilient", "--input", "tone:500", "--output", "none"
    )
    lee = lan4.headless(
        3,
        tmp_path,
        "Lee",
        "--join",
        "Resilient",
        "--input",
        "none",
        "--output",
        f"file:{tmp_path / 'lee.wav'}",
        "--frame-log",
        str(tmp_path / "lee.json"),
    )
    others = [cora, sam, lee]
    try:
        ids = {
            name: node.wait_for("ready")["node"]
            for name, node in (("host", host), ("cora", cora), ("sam", sam), ("lee", lee))
        }
        for node in others:
            node.wait_for("joined")
        for name, node in (("cora", cora), ("sam", sam)):
            host.send(cmd="request", action="invite_speaker", target=ids[name])
            node.wait_for(
                "state",
                lambda e, me=ids[name]: any(m["id"] == me and m["invited"] for m in e["members"]),
            )
            node.send(cmd="request", action="accept_invite")
        host.wait_for("state", lambda e: sum(m["role"] == "speaker" for m in e["members"]) == 2)
        host.send(cmd="request", action="add_cohost", target=ids["cora"])
        lee.wait_for("state", lambda e: e["cohosts"] == [ids["cora"]])
        lee.wait_for("speaking", lambda e: e["name"] == "Sam")  # two speakers talk: Sam, Cora
        time.sleep(1.5)
        killed_at = time.monotonic()
        host.proc.send_signal(signal.SIGKILL)
        changed = lee.wait_for("authority", within=10)
        took = time.monotonic() - killed_at
        assert changed["authority"] == ids["cora"] and changed["epoch"] == 1
        assert took < 5.0, f"takeover took {took:.1f} s"
        after = lee.wait_for(
            "state", lambda e: ids["host"] not in [m["id"] for m in e["members"]], within=10
        )
        assert after["authority"] == ids["cora"]
        assert {m["name"]: m["role"] for m in after["members"]} == {
            "Cora": "cohost",
            "Sam": "speaker",
            "Lee": "listener",
        }
        states = [n.wait_for("state", lambda e: e["seq"] == after["seq"]) for n in (cora, sam)]
        assert {s["hash"] for s in states} == {after["hash"]}
        time.sleep(1.0)
        ended_at = time.monotonic()
        # The host's laptop comes back: the same command, the same home. It finds its room still
        # live under Cora, rejoins it and reclaims it with the next epoch.
        crashed = host
        crashed.stop()
        host = lan4.headless(
            0, tmp_path, "Hana", "--host", "Resilient", "--input", "none", "--output", "none"
        )
        back = lee.wait_for("authority", lambda e: e["authority"] == ids["host"], within=30)
        assert back["epoch"] == 2
        final = lee.wait_for(
            "state",
            lambda e: (
                e["epoch"] == 2
                and any(m["name"] == "Hana" and m["role"] == "host" for m in e["members"])
            ),
        )
        assert final["cohosts"] == [ids["cora"]]
    finally:
        statuses = [node.stop() for node in reversed(others)]
        host_status = host.stop()
    assert statuses == [0, 0, 0]
    assert host_status == 0
    ticks = json.loads((tmp_path / "lee.json").read_text())["ticks"]
    first = next(i for i, t in enumerate(ticks) if t >= killed_at - 1.0)
    last = next(i for i, t in enumerate(ticks) if t >= ended_at)
    recording = load_audio(tmp_path / "lee.wav")
    window = recording[first * FRAME_SAMPLES : last * FRAME_SAMPLES]
    assert len(window) > 3 * SAMPLE_RATE
    assert _longest_quiet_ms(window) <= 200
    # Both voices are there after the takeover, not only one of them.
    after_kill = window[-2 * SAMPLE_RATE :].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(after_kill))
    freqs = np.fft.rfftfreq(len(after_kill), 1 / SAMPLE_RATE)
    for hz in (500, 700):
        band = (freqs > hz - 20) & (freqs < hz + 20)
        assert spectrum[band].sum() / spectrum.sum() > 0.1, (
            hz,
            [e.get("name") for e in lee.seen if e["event"] == "speaking"],
        )
