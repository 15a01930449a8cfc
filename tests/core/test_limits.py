"""The authority's replay table: bounded, and forgetting never lets an old message through."""

from __future__ import annotations

from p2pspaces.core.limits import Freshness

HONEST, FLOODER = b"honest-gateway", b"flooding-gateway"


def test_a_signer_must_rise_and_a_new_epoch_starts_afresh() -> None:
    fresh = Freshness()
    assert fresh.admit(0, b"gus", HONEST, 100) is None
    assert fresh.admit(0, b"gus", HONEST, 100) is not None  # the same message again
    assert fresh.admit(0, b"gus", HONEST, 99) is not None  # an older one, reordered
    assert fresh.admit(0, b"gus", HONEST, 101) is None
    assert fresh.admit(1, b"gus", HONEST, 5) is None  # the epoch names the table


def test_a_gateway_flooding_fresh_keys_forgets_only_its_own_and_replays_stay_refused() -> None:
    fresh = Freshness(per_relay=4, total=6)
    assert fresh.admit(0, b"gus", HONEST, 1_000) is None
    assert fresh.admit(0, b"gia", HONEST, 1_001) is None
    for n in range(100):  # keys it made itself, with huge counters
        assert fresh.admit(0, b"fake%d" % n, FLOODER, 2**60 + n) is None
    assert len(fresh) <= 6
    # The honest gateway's guests are still known, and a newcomer through it passes.
    assert fresh.admit(0, b"gus", HONEST, 1_000) is not None
    assert fresh.admit(0, b"gus", HONEST, 1_002) is None
    assert fresh.admit(0, b"new", HONEST, 1_003) is None
    # A forgotten key's old message, replayed by the flooder, is under its floor.
    assert fresh.admit(0, b"fake0", FLOODER, 2**60) is not None


def test_the_oldest_entry_goes_when_the_whole_table_is_full_and_its_floor_stays() -> None:
    fresh = Freshness(per_relay=10, total=3)
    for n, relay in enumerate((b"a", b"b", b"c")):
        assert fresh.admit(0, b"guest-%d" % n, relay, 500 + n) is None
    assert fresh.admit(0, b"guest-3", b"d", 600) is None  # guest-0 (through a) forgotten
    assert fresh.admit(0, b"guest-0", b"a", 500) is not None
    assert fresh.admit(0, b"guest-0", b"a", 700) is None
