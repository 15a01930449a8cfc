"""Separate p2pspaces processes on three hosts of a bridged LAN find a room and agree on it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from p2pspaces.testing.lan import Lan

pytestmark = pytest.mark.netns


def test_rooms_are_found_and_joined_across_namespaces(lan3: Lan, tmp_path: Path) -> None:
    host = lan3.headless(
        0, tmp_path, "Hana", "--interface", lan3.address(0), "--host", "Netns room"
    )
    nodes = [host]
    try:
        host_ready = host.wait_for("ready")
        assert host_ready["addresses"] == [lan3.address(0)]
        host.wait_for("state", lambda e: e["seq"] == 0)

        listed = subprocess.run(
            lan3.command(2, "rooms", "--json", "--wait", "3"),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        rooms = json.loads(listed.stdout)
        assert [(r["title"], r["host_name"]) for r in rooms] == [("Netns room", "Hana")]
        room_id = rooms[0]["room"]

        # No --interface: each node picks its namespace's own LAN address by itself.
        ann = lan3.headless(1, tmp_path, "Ann", "--join", "Netns room")
        bob = lan3.headless(2, tmp_path, "Bob", "--join", room_id[:10])
        nodes += [ann, bob]
        for member in (ann, bob):
            assert member.wait_for("joined")["room"] == room_id
        states = [n.wait_for("state", lambda e: len(e["members"]) == 3) for n in nodes]
        assert len({(s["epoch"], s["seq"], s["hash"]) for s in states}) == 1
        assert sorted(m["name"] for m in states[0]["members"]) == ["Ann", "Bob", "Hana"]

        ann.send(cmd="chat", text="hello over the bridge")
        for node in nodes:
            chat = node.wait_for("chat")
            assert (chat["name"], chat["text"]) == ("Ann", "hello over the bridge")
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0] * len(nodes)
    assert any(e["event"] == "ended" for e in host.seen)
