"""A listener behind a bad link (5% loss, 40 ± 20 ms delay each way, 1% reordered): it joins,
hears speech that matches its source, its delay does not creep over a minute, and it follows a
takeover within 5 s."""

from __future__ import annotations

import signal
import statistics
import time
from pathlib import Path

import pytest

from p2pspaces.audio.analysis import chunk_correlations
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.impair import Impairment, offsets
from p2pspaces.testing.lan import Lan
from p2pspaces.testing.signals import speech

pytestmark = pytest.mark.netns

BAD_LINK = Impairment(loss=5, delay_ms=40, jitter_ms=20, reorder=1)
LISTEN_S = 60.0


def test_a_listener_behind_a_bad_link_hears_clearly_and_follows_a_takeover(
    lan3: Lan, tmp_path: Path
) -> None:
    source_path = speech(tmp_path / "speech.wav")
    source = load_audio(source_path)
    lan3.impair(2, BAD_LINK, seed=7)
    hana = lan3.headless(
        0, tmp_path, "Hana", "--host", "Rough", "--input", f"file:{source_path}?loop",
        "--output", "none",
    )  # fmt: skip
    cody = lan3.headless(1, tmp_path, "Cody", "--join", "Rough", "--input", "none")
    hana.wait_for("joined")
    started = time.monotonic()
    ann = lan3.headless(
        2, tmp_path, "Ann", "--join", "Rough", "--input", "none",
        "--output", f"file:{tmp_path / 'ann.wav'}",
    )  # fmt: skip
    try:
        ann.wait_for("joined", within=30)
        joined_s = time.monotonic() - started
        cody_id = cody.wait_for("ready")["node"]
        cody.wait_for("joined")
        hana.send(cmd="request", action="invite_speaker", target=cody_id)
        cody.wait_for("state", lambda e: any(m["invited"] for m in e["members"]))
        cody.send(cmd="request", action="accept_invite")
        hana.wait_for("state", lambda e: any(m["role"] == "speaker" for m in e["members"]))
        hana.send(cmd="request", action="add_cohost", target=cody_id)
        ann.wait_for("state", lambda e: e["cohosts"] == [cody_id], within=15)
        ann.wait_for("speaking", lambda e: e["name"] == "Hana", within=15)
        time.sleep(LISTEN_S)
        killed_at = time.monotonic()
        hana.proc.send_signal(signal.SIGKILL)
        changed = ann.wait_for("authority", within=15)
        took = time.monotonic() - killed_at
    finally:
        statuses = [node.stop() for node in (ann, cody)]
        hana.stop()
        counts = lan3.cable_counts()
    assert statuses == [0, 0]
    recording = load_audio(tmp_path / "ann.wav")
    heard = recording
    scores = chunk_correlations(heard, source)
    delays = offsets(heard, source)
    early = statistics.median(d for t, d in delays[:5])
    late = statistics.median(d for t, d in delays[-5:])
    report = (
        f"joined in {joined_s:.1f} s; speech per-second correlation median "
        f"{statistics.median(scores):.2f}; delay moved {1000 * (late - early):+.0f} ms over "
        f"{delays[-1][0] - delays[0][0]:.0f} s; takeover seen "
        f"in {took:.1f} s; cable {counts}"
    )
    print(report)
    assert counts[0]["lost"] > 0 and counts[0]["reordered"] > 0, report
    assert statistics.median(scores) >= 0.6, report
    assert delays[-1][0] - delays[0][0] > 0.8 * LISTEN_S, report
    assert late - early < 0.06, report  # no creep
    assert changed["authority"] == cody_id, report
    assert took < 5.0, report
