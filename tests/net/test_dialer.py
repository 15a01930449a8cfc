"""Redials after a link falls silent: backed off and jittered, never a storm."""

from __future__ import annotations

import errno
from types import SimpleNamespace
from typing import Any

from p2pspaces.core.identity import NodeId
from p2pspaces.node.dialer import FIRST_BACKOFF_S, SILENCE_MEMORY_S, Dialer, why


def _dialer(now: list[float], dialed: list[Any]) -> Dialer:
    mesh: Any = SimpleNamespace(links={})

    def spawn(work: Any) -> None:
        dialed.append(work)
        work.close()  # never run: we only count the dials

    return Dialer(mesh, lambda: now[0], spawn, lambda peer, reason: None, 8.0)


def test_a_peer_that_falls_silent_again_and_again_waits_longer_each_time() -> None:
    now, dialed = [100.0], []
    dialer = _dialer(now, dialed)
    peer = NodeId(b"p" * 32)
    waits = []
    for _ in range(7):
        waits.append(dialer.fell_silent(peer))
        now[0] += 1.0
    bases = [min(8.0, FIRST_BACKOFF_S * 2**i) for i in range(7)]
    for wait, base in zip(waits, bases, strict=True):
        assert 0.5 * base <= wait <= 1.5 * base
    # Not dialed again before its wait is over; dialed once it is.
    advert: Any = SimpleNamespace(addresses=("10.0.0.2",), port=4000)
    dialer.fell_silent(peer)
    dialer.ensure({peer: advert})
    assert dialed == []
    now[0] += 13.0
    dialer.ensure({peer: advert})
    assert len(dialed) == 1
    # A minute of calm and it starts over.
    now[0] += SILENCE_MEMORY_S + 1
    assert dialer.fell_silent(peer) <= 1.5 * FIRST_BACKOFF_S


def test_the_peers_of_a_busy_node_do_not_all_come_back_at_once() -> None:
    now, dialed = [0.0], []
    dialer = _dialer(now, dialed)
    waits = {dialer.fell_silent(NodeId(bytes([i]) * 32)) for i in range(50)}
    assert len(waits) > 40 and max(waits) - min(waits) > 0.15  # spread, not one instant


def test_a_failed_dial_is_said_in_words_not_as_a_python_tuple() -> None:
    # What asyncio raises when a host does not answer: errno and a message with a tuple in it.
    failed = OSError(errno.EHOSTUNREACH, "Connect call failed ('10.91.0.99', 41234)")
    assert why(failed) == "no route to host"
