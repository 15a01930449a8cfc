"""Relays in the session kit's fake network: the authority plans them, members link with their
relay, everyone agrees on the plan, and a listener's "nothing comes through" is checked."""

from __future__ import annotations

from p2pspaces.core.events import ErrorEvent
from p2pspaces.core.session import RoomSession
from p2pspaces.core.wire import ActionKind

from .kit import FakeNet, hashes


def _room() -> tuple[FakeNet, tuple[RoomSession, ...]]:
    """Hana hosts and lets one listener hear her straight; Ann, Bob and Cat join."""
    net = FakeNet()
    people = tuple(net.add(n) for n in ("Hana", "Ann", "Bob", "Cat"))
    people[0].authority.relays.direct_limit = 1
    net.room(*people)
    net.settle(2.0)
    return net, people


def test_the_plan_reaches_everyone_and_a_listener_links_with_its_relay() -> None:
    _, (host, ann, bob, cat) = _room()
    state = host.state
    assert state is not None
    assert [state.members[n.me].via for n in (ann, bob, cat)] == [None, ann.me, ann.me]
    assert len(hashes(host, ann, bob, cat)) == 1
    assert ann.linking.wanted() >= {bob.me, cat.me}
    assert bob.linking.wanted() == {ann.me, host.me}
    assert bob.linking.should_dial(ann.me) and not ann.linking.should_dial(bob.me)


def test_hearing_straight_is_granted_only_if_the_voices_reach_the_authority() -> None:
    net, (host, ann, bob, cat) = _room()
    host.authority.voices_heard = lambda: False  # the speakers are silent: not Ann's fault
    net.act(bob, ActionKind.RELAY)
    net.settle(0.5)
    refusals = [e for e in net.seen(bob, ErrorEvent) if "silent here too" in e.reason]
    assert refusals and host.state is not None
    assert host.state.members[bob.me].via == ann.me
    host.authority.voices_heard = lambda: True
    net.act(bob, ActionKind.RELAY)
    net.settle(2.0)
    # Bob heard straight, and since the room is still past its limit, got another relay
    # (Cat, one relay out): Ann takes no one new for a while.
    state = host.state
    assert state.members[bob.me].via == cat.me
    assert ann.me in host.authority.relays.benched
    assert len(hashes(host, ann, bob, cat)) == 1
