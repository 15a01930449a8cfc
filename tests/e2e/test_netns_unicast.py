"""A network that filters multicast: mDNS finds nothing, yet a Space joined by its host's
address works, audio between members included (they learn each other's contacts from the room).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.lan import Lan
from p2pspaces.testing.signals import speech

pytestmark = pytest.mark.netns


def test_join_by_address_where_multicast_is_filtered(lan3: Lan, tmp_path: Path) -> None:
    lan3.filter_multicast()
    clip_path = speech(tmp_path / "speech.wav")
    clip = load_audio(clip_path)
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", "Unicast", "--input", "none", "--output", "none"
    )
    nodes = [hana]
    try:
        ready = hana.wait_for("ready")
        hana.wait_for("joined")
        address = f"{lan3.address(0)}:{ready['port']}"
        found = subprocess.run(
            lan3.command(2, "rooms", "--json", "--wait", "2"),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(found.stdout) == [], "mDNS should find nothing on this network"
        ann = lan3.headless(
            1,
            tmp_path,
            "ann",
            "--join",
            address,
            "--input",
            f"file:{clip_path}?loop",
            "--output",
            "none",
        )
        bob = lan3.headless(
            2,
            tmp_path,
            "bob",
            "--join",
            address,
            "--input",
            "none",
            "--output",
            f"file:{tmp_path / 'bob.wav'}",
        )
        nodes += [ann, bob]
        for member in (ann, bob):
            joined = member.wait_for("joined")
            assert joined["title"] == "Unicast"
        hana.wait_for("state", lambda e: len(e["members"]) == 3)
        hana.send(cmd="request", action="invite_speaker", target="ann")
        ann.wait_for(
            "state", lambda e: any(m["name"] == "ann" and m["invited"] for m in e["members"])
        )
        ann.send(cmd="request", action="accept_invite")
        # Ann's voice reaches Bob over a link made from the contact the room relayed.
        bob.wait_for("speaking", lambda e: e["name"] == "ann", within=20)
        time.sleep(2.5 * len(clip) / SAMPLE_RATE)
        hashes = {node.current_state()["hash"] for node in nodes}
        assert len(hashes) == 1
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0] * len(nodes)
    recording = load_audio(tmp_path / "bob.wav")
    alignment = align(recording, clip)
    assert alignment.correlation >= 0.8, alignment
