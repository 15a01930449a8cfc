"""A node flooded with 20,000 validly signed adverts from fresh keys and 20,000 forged ones keeps
its memory bounded, still answers ``rooms``, and still finds and joins the real room."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from p2pspaces.core import wire
from p2pspaces.core.events import Left
from p2pspaces.node.directory import ADVERTS_MAX
from p2pspaces.testing.flood import run_flood

from ..net.conftest import next_event

RSS_GROWTH_MAX_MB = 80.0
"""A node is ~100 MB; the caps hold what a flood can add (zeroconf's cache is itself capped at
10,000 records) to well under this."""


def test_a_flood_of_adverts_is_bounded_and_the_real_room_still_joinable(tmp_path: Path) -> None:
    result = run_flood(tmp_path, valid=20_000, forged=20_000)
    assert result.rss_after_mb - result.rss_before_mb < RSS_GROWTH_MAX_MB, result
    # Capped; and the flood's fakes leave the list as their records leave the cache, since
    # nobody answers for them when asked again (so how many are left is not fixed).
    assert result.rooms_listed <= ADVERTS_MAX, result
    assert result.real_room_listed, result
    assert result.join_s < 60, result


async def test_a_flooder_is_told_it_was_dropped_and_for_how_long(
    make_node: Callable[..., Any],
) -> None:
    hana, mal = await make_node("Hana"), await make_node("Mallory")
    room_id = await hana.host("No floods")
    await mal.join(room_id.hex())
    state = hana.replica.state  # type: ignore[union-attr]
    beat = wire.seal_bytes(mal.identity, wire.Heartbeat(room_id, state.epoch, state.seq, b"h" * 32))
    for _ in range(2000):
        mal.mesh.send(hana.node_id, beat)
    left = await next_event(mal, Left)
    assert "flooding" in left.reason and "30 s" in left.reason
    assert mal.replica is None
