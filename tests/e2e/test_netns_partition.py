"""Cut a host off the LAN and bring it back: states converge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .lan import Lan, NodeProcess

pytestmark = pytest.mark.netns


def test_a_member_cut_off_and_back_converges(lan3: Lan, tmp_path: Path) -> None:
    def start(index: int, name: str, *extra: str) -> NodeProcess:
        argv = lan3.command(
            index,
            "start",
            "--headless",
            "--name",
            name,
            "--home",
            str(tmp_path / name),
            "--input",
            "none",
            "--output",
            "none",
            *extra,
        )
        return NodeProcess(argv, tmp_path / f"{name}.log")

    host = start(0, "Hana", "--host", "Flaky Wi-Fi")
    ann = start(1, "Ann", "--join", "Flaky Wi-Fi")
    bob = start(2, "Bob", "--join", "Flaky Wi-Fi")
    nodes = [host, ann, bob]
    try:
        for node in (ann, bob):
            node.wait_for("joined")
        host.wait_for("state", lambda e: len(e["members"]) == 3)
        lan3.set_link(2, up=False)  # Bob's cable is pulled
        host.wait_for("state", lambda e: "Bob" not in [m["name"] for m in e["members"]], within=20)
        bob.wait_for("error", lambda e: e["code"] == "authority_lost", within=20)
        # Meanwhile the room goes on without Bob.
        host.send(cmd="request", action="set_title", text="Flaky Wi-Fi, still here")
        ann.wait_for("state", lambda e: e["title"] == "Flaky Wi-Fi, still here")
        lan3.set_link(2, up=True)
        # Bob comes back by himself and catches up: everyone holds the same state again.
        back = host.wait_for(
            "state", lambda e: "Bob" in [m["name"] for m in e["members"]], within=40
        )
        for node in (ann, bob):
            mine = node.wait_for("state", lambda e: e["seq"] == back["seq"], within=20)
            assert mine["hash"] == back["hash"]
            assert mine["title"] == "Flaky Wi-Fi, still here"
        time.sleep(0.5)
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0, 0, 0]
