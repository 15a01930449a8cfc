"""Joining and every Space action, between sessions in memory (milliseconds, no sleeps)."""

from __future__ import annotations

from p2pspaces.core.events import ChatReceived, ErrorEvent, Joined, Left, StateChanged
from p2pspaces.core.room import Role
from p2pspaces.core.session import Phase
from p2pspaces.core.wire import ActionKind

from .kit import FakeNet, hashes, roles


def test_three_join_and_hold_the_same_state() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    net.settle(0.5)
    assert hana.phase is Phase.AUTHORITY
    assert ann.phase is bob.phase is Phase.MEMBER
    assert len(hashes(hana, ann, bob)) == 1
    assert roles(hana.state) == {"Hana": "host", "Ann": "listener", "Bob": "listener"}  # type: ignore[arg-type]
    assert [e.title for e in net.seen(ann, Joined)] == ["Friday demo"]


def test_hand_raised_accepted_then_muted_and_removed() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    net.act(ann, ActionKind.RAISE_HAND)
    net.settle(0.2)
    assert hana.state.hand_queue() == [ann.me]  # type: ignore[union-attr]
    net.act(hana, ActionKind.ACCEPT_HAND, ann)
    net.settle(0.2)
    assert bob.state.members[ann.me].role is Role.SPEAKER  # type: ignore[union-attr]
    assert bob.may_speak(ann.me)
    net.act(hana, ActionKind.MUTE, ann)
    net.settle(0.2)
    assert not bob.may_speak(ann.me)
    net.act(hana, ActionKind.REMOVE, bob)
    net.settle(0.5)
    assert bob.phase is Phase.IDLE
    assert [e.reason for e in net.seen(bob, Left)] == ["removed from the room"]
    assert len(hashes(hana, ann)) == 1
    assert bob.me not in hana.state.members  # type: ignore[union-attr]


def test_a_listener_cannot_mute_the_host() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    before = hashes(hana)
    req = net.act(ann, ActionKind.MUTE, hana)
    net.settle(0.2)
    refusals = [e for e in net.seen(ann, ErrorEvent) if e.req_id == req]
    assert refusals and refusals[0].code == "refused"
    assert hashes(hana, ann) == before


def test_chat_reaches_everyone_in_order() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    for line in ("one", "two", "three"):
        ann.chat(line, net.now)
        net.pump(ann)
    net.settle(0.2)
    for who in (hana, ann, bob):
        assert [e.text for e in net.seen(who, ChatReceived)] == ["one", "two", "three"]


def test_state_events_follow_every_change() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    net.act(hana, ActionKind.SET_TITLE, text="New title")
    net.settle(0.2)
    assert net.seen(ann, StateChanged)[-1].state.title == "New title"
