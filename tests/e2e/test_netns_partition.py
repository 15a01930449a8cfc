"""Cut a host off the LAN and bring it back: states converge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from p2pspaces.testing.lan import Lan

pytestmark = pytest.mark.netns
QUIET = ("--input", "none", "--output", "none")


def test_a_member_cut_off_and_back_converges(lan3: Lan, tmp_path: Path) -> None:
    host = lan3.headless(0, tmp_path, "Hana", *QUIET, "--host", "Flaky Wi-Fi")
    ann = lan3.headless(1, tmp_path, "Ann", *QUIET, "--join", "Flaky Wi-Fi")
    bob = lan3.headless(2, tmp_path, "Bob", *QUIET, "--join", "Flaky Wi-Fi")
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


@pytest.mark.parametrize("apart", [0.0, 10.0], ids=["links-survive", "links-drop"])
def test_a_host_cut_off_rejoins_the_winning_branch_and_keeps_its_blocks(
    lan3: Lan, tmp_path: Path, apart: float
) -> None:
    host = lan3.headless(0, tmp_path, "Hana", *QUIET, "--host", "Split")
    cora = lan3.headless(1, tmp_path, "Cora", *QUIET, "--join", "Split")
    ann = lan3.headless(2, tmp_path, "Ann", *QUIET, "--join", "Split")
    nodes = [host, cora, ann]
    stranger = "ab" * 32
    try:
        ids = {n: p.wait_for("ready")["node"] for n, p in (("host", host), ("cora", cora))}
        for node in (cora, ann):
            node.wait_for("joined")
        host.send(cmd="request", action="invite_speaker", target=ids["cora"])
        cora.wait_for("state", lambda e: any(m["invited"] for m in e["members"]))
        cora.send(cmd="request", action="accept_invite")
        host.wait_for("state", lambda e: any(m["role"] == "speaker" for m in e["members"]))
        host.send(cmd="request", action="add_cohost", target=ids["cora"])
        ann.wait_for("state", lambda e: e["cohosts"] == [ids["cora"]])
        time.sleep(1.0)
        lan3.set_link(0, up=False)  # the host's side of the room is cut off
        assert ann.wait_for("authority", within=15)["authority"] == ids["cora"]
        host.send(cmd="request", action="block", target=stranger)  # made alone, while apart
        host.wait_for("state", lambda e: stranger in e["blocked"])
        time.sleep(apart)  # long enough, every link on both sides times out
        lan3.set_link(0, up=True)
        # The branch with the higher epoch wins; the host rejoins, reclaims, keeps its block.
        merged = host.wait_for("converged", within=60)
        assert merged["authority"] == ids["cora"] and merged["blocks_kept"] == 1
        final = host.wait_for(
            "state",
            lambda e: (
                e["authority"] == ids["host"]
                and stranger in e["blocked"]
                and len(e["members"]) == 3
            ),
            within=30,
        )
        for node in (cora, ann):
            try:
                mine = node.wait_for("state", lambda e: e["seq"] == final["seq"], within=30)
            except AssertionError:
                summary = [
                    (
                        e["event"],
                        e.get("epoch"),
                        e.get("seq"),
                        e.get("authority", "")[:6],
                        len(e.get("members", [])),
                        e.get("code"),
                        e.get("reason"),
                    )
                    for e in node.seen[-12:]
                ]
                raise AssertionError((final["seq"], summary)) from None
            assert mine["hash"] == final["hash"]
        assert final["epoch"] == 2
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0, 0, 0]
