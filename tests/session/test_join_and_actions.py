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


def test_every_action_reaches_every_member_and_they_agree() -> None:
    net = FakeNet()
    hana, cody, ann, bob = net.add("Hana"), net.add("Cody"), net.add("Ann"), net.add("Bob")
    net.room(hana, cody, ann, bob)
    everyone = (hana, cody, ann, bob)
    steps = [
        (ann, ActionKind.RAISE_HAND, None, {}, lambda s: s.members[ann.me].hand > 0),
        (ann, ActionKind.LOWER_HAND, None, {}, lambda s: s.members[ann.me].hand == 0),
        (hana, ActionKind.INVITE_SPEAKER, cody, {}, lambda s: s.members[cody.me].invited),
        (
            cody,
            ActionKind.ACCEPT_INVITE,
            None,
            {},
            lambda s: s.members[cody.me].role is Role.SPEAKER,
        ),
        (hana, ActionKind.ADD_COHOST, cody, {}, lambda s: s.cohosts == (cody.me,)),
        (cody, ActionKind.INVITE_SPEAKER, bob, {}, lambda s: s.members[bob.me].invited),
        (bob, ActionKind.DECLINE_INVITE, None, {}, lambda s: not s.members[bob.me].invited),
        (bob, ActionKind.RAISE_HAND, None, {}, lambda s: s.hand_queue() == [bob.me]),
        (cody, ActionKind.ACCEPT_HAND, bob, {}, lambda s: s.members[bob.me].role is Role.SPEAKER),
        (cody, ActionKind.MUTE, bob, {}, lambda s: s.members[bob.me].muted),
        (bob, ActionKind.UNMUTE, None, {}, lambda s: not s.members[bob.me].muted),
        (bob, ActionKind.MUTE, None, {}, lambda s: s.members[bob.me].muted),
        (
            cody,
            ActionKind.MAKE_LISTENER,
            bob,
            {},
            lambda s: s.members[bob.me].role is Role.LISTENER,
        ),
        (hana, ActionKind.SET_TITLE, None, {"text": "Renamed"}, lambda s: s.title == "Renamed"),
        (hana, ActionKind.SET_RECORDING, None, {"flag": True}, lambda s: s.recording),
        (ann, ActionKind.LEAVE, None, {}, lambda s: ann.me not in s.members),
        (cody, ActionKind.REMOVE, bob, {}, lambda s: bob.me not in s.members),
        (hana, ActionKind.REMOVE_COHOST, cody, {}, lambda s: s.cohosts == ()),
        (hana, ActionKind.BLOCK, cody, {}, lambda s: cody.me in s.blocked),
    ]
    for who, kind, whom, extra, effect in steps:
        net.act(who, kind, whom, **extra)
        net.settle(0.3)
        assert effect(hana.state), kind
        here = [s for s in everyone if s.phase is Phase.MEMBER or s.phase is Phase.AUTHORITY]
        assert len(hashes(*here)) == 1, kind
    assert {s.name for s in everyone if s.phase is Phase.IDLE} == {"Ann", "Bob", "Cody"}
    net.act(hana, ActionKind.END)
    net.settle(0.3)
    assert hana.phase is Phase.ENDED


def test_a_join_outlives_its_link_breaking_twice_and_gives_up_the_third_time() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.host(hana, "Rough")
    pair = frozenset((ann.me, hana.me))
    net.join(ann, hana)
    for _ in range(2):  # a lossy link dies before the join is through: dialed again
        net.run_until(lambda: pair in net.linked, limit=2)
        net.cut(ann.me, hana.me, "control channel closed")
        assert ann.phase is Phase.JOINING
    net.run_until(lambda: ann.phase is Phase.MEMBER, limit=5)
    assert not [e for e in net.seen(ann, ErrorEvent) if e.code == "join_failed"]
    assert len(hashes(hana, ann)) == 1
    pair = frozenset((bob.me, hana.me))
    net.join(bob, hana)
    for _ in range(3):
        net.run_until(lambda: pair in net.linked or bob.phase is not Phase.JOINING, limit=2)
        net.cut(bob.me, hana.me, "control channel closed")
    assert bob.phase is Phase.IDLE
    failed = [e for e in net.seen(bob, ErrorEvent) if e.code == "join_failed"]
    assert [e.reason for e in failed] == ["the link to the room broke: control channel closed"]
