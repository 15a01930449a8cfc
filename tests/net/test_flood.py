"""A node flooded with 20,000 validly signed adverts from fresh keys and 20,000 forged ones keeps
its memory bounded, still answers ``rooms``, and still finds and joins the real room."""

from __future__ import annotations

from pathlib import Path

from p2pspaces.node.directory import ADVERTS_MAX
from p2pspaces.testing.flood import run_flood

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
