"""Grace before dropping, resync after a gap, rate limits, eviction, ending and leaving."""

from __future__ import annotations

import pytest

from p2pspaces.app.words import Narrator
from p2pspaces.core import succession, wire
from p2pspaces.core.authority import REQUEST_BURST
from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import ChatReceived, Ended, ErrorEvent, Left, StateChanged
from p2pspaces.core.member import FLOODING
from p2pspaces.core.session import Phase
from p2pspaces.core.talk import CHAT_BURST
from p2pspaces.core.wire import Action, ActionKind

from .kit import FAST, FakeNet, hashes


def test_a_member_back_within_the_grace_keeps_its_place() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    net.cut(hana.me, ann.me, "wifi hiccup")
    net.run(FAST.grace_s / 2)
    assert [e.code for e in net.seen(ann, ErrorEvent)] == ["authority_lost"]
    net.run(FAST.grace_s * 2)  # Ann redials at once and is back in time
    assert ann.me in hana.state.members  # type: ignore[union-attr]
    assert len(hashes(hana, ann)) == 1


def test_a_member_gone_past_the_grace_is_dropped() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    net.crash(bob)
    net.run(FAST.peer_timeout_s + FAST.grace_s / 2)
    assert bob.me in hana.state.members  # type: ignore[union-attr]
    net.run(FAST.grace_s)
    assert bob.me not in hana.state.members  # type: ignore[union-attr]
    assert bob.me not in ann.state.members  # type: ignore[union-attr]


def test_a_member_that_missed_updates_resyncs_from_a_snapshot() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    net.loss = 1.0  # everything sent now is lost...
    net.act(hana, ActionKind.SET_TITLE, text="Lost title")
    net.act(hana, ActionKind.INVITE_SPEAKER, ann)
    net.loss = 0.0
    net.act(hana, ActionKind.SET_TITLE, text="Seen title")  # ...this one shows a gap
    net.settle(0.5)
    assert len(hashes(hana, ann, bob)) == 1
    assert ann.state.title == "Seen title"  # type: ignore[union-attr]
    assert ann.state.members[ann.me].invited  # type: ignore[union-attr]


def test_a_flood_of_hand_raises_is_refused_beyond_the_limit() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    seq = hana.state.seq  # type: ignore[union-attr]
    for i in range(100):
        net.act(ann, ActionKind.RAISE_HAND if i % 2 == 0 else ActionKind.LOWER_HAND)
    net.settle(0.05)
    issued = hana.state.seq - seq  # type: ignore[union-attr]
    assert issued <= REQUEST_BURST + 1
    limited = [e for e in net.seen(ann, ErrorEvent) if e.code == "rate_limited"]
    assert len(limited) >= 100 - issued - 1
    assert "requests at once" in limited[0].reason


def test_chat_beyond_its_burst_is_refused_and_the_rest_arrives() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    for i in range(int(CHAT_BURST) + 3):
        ann.chat(f"line {i}", net.now)
        net.pump(ann)
    net.settle(0.2)
    heard = [e.text for e in net.seen(hana, ChatReceived)]
    assert heard == [f"line {i}" for i in range(int(CHAT_BURST))]
    assert [e.code for e in net.seen(ann, ErrorEvent)].count("rate_limited") == 3


def test_a_joiner_linked_while_the_room_changes_is_not_hung_up() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann)
    net.join(bob, hana)
    net.run(0.003)  # Bob's link is up, his join request not yet handled
    net.act(hana, ActionKind.SET_TITLE, text="Busy room")
    net.settle(1.0)
    assert bob.phase is Phase.MEMBER
    assert not [e for e in net.seen(bob, ErrorEvent) if e.code == "authority_lost"]


def test_a_flooder_is_told_why_and_for_how_long() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    notice = wire.encode(wire.Error(FLOODING, "sent more than 100 messages a second; 30 s"))
    ann.receive(hana.me, notice, net.now)  # what the authority's mesh sends before hanging up
    net.pump(ann)
    net.cut(hana.me, ann.me, "flooding", misbehaved=True)
    net.settle(0.2)
    left = net.seen(ann, Left)
    assert left and "flooding" in left[0].reason and "30 s" in left[0].reason
    assert ann.phase is Phase.IDLE
    assert ann.me not in hana.state.members  # type: ignore[union-attr]


def test_the_host_ending_the_space_ends_it_for_everyone() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    net.act(hana, ActionKind.END)
    net.settle(0.3)
    for session in (hana, ann):
        assert session.phase is Phase.ENDED
    # Each is told in its own words: the host that it ended it, the others by whom.
    assert [(e.reason, e.by_me) for e in net.seen(hana, Ended)] == [("you ended the Space", True)]
    assert [(e.reason, e.by_me) for e in net.seen(ann, Ended)] == [("Hana ended the Space", False)]
    assert Narrator(hana.me).tell(net.seen(hana, Ended)[0])[0].text == "You ended the Space."
    assert not net.linked


def test_a_host_leaving_hands_over_to_its_cohost() -> None:
    net = FakeNet()
    hana, cody, ann = net.add("Hana"), net.add("Cody"), net.add("Ann")
    net.room(hana, cody, ann)
    net.act(hana, ActionKind.ADD_COHOST, cody)
    net.settle(0.3)
    hana.leave(net.now)
    net.pump(hana)
    net.settle(1.0)
    assert hana.phase is Phase.IDLE
    assert [e.reason for e in net.seen(hana, Left)] == ["left"]
    assert cody.phase is Phase.AUTHORITY
    assert ann.state.authority == cody.me  # type: ignore[union-attr]
    assert len(hashes(cody, ann)) == 1
    assert net.seen(ann, StateChanged)[-1].state.members.keys() == {cody.me, ann.me}


@pytest.mark.parametrize("kind", ["update", "snapshot", "claim"])
def test_a_member_checks_each_signature_it_receives_once(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Verification is most of what a member spends on the room (scripts/bench_core.py): a
    # message decoded and verified twice on its way in costs every member double.
    net = FakeNet()
    hana, cody, ann = net.add("Hana"), net.add("Cody"), net.add("Ann")
    net.room(hana, cody, ann)
    net.act(hana, ActionKind.ADD_COHOST, cody)
    net.settle(0.5)
    replica = hana.replica
    assert replica is not None
    if kind == "update":
        data = replica.issue(hana._ctx.identity, hana.me, Action(ActionKind.SET_TITLE, text="T"))
        signatures = 1
    elif kind == "snapshot":
        data = replica.snapshot(hana._ctx.identity)
        signatures = 2  # the snapshot, and the genesis inside it
    else:
        cody_replica = cody.replica
        assert cody_replica is not None and cody_replica.attestation is not None
        data = succession.make_claim(
            cody_replica.state,
            cody._ctx.identity,
            basis=cody_replica.attestation,
            base_hash=cody_replica.hash(),
        )
        signatures = 2  # the claim, and the authority's word for its base
    calls: list[bytes] = []
    real = wire.verify

    def counting(key: bytes, signature: bytes, domain: bytes, payload: bytes) -> bool:
        calls.append(payload)
        return real(key, signature, domain, payload)

    monkeypatch.setattr(wire, "verify", counting)
    ann.receive(hana.me if kind != "claim" else cody.me, data, net.now)
    assert len(calls) == signatures
    assert len(set(calls)) == signatures


def test_a_chat_line_or_title_over_the_limit_is_refused_in_words() -> None:
    net = FakeNet()
    hana = net.add("Hana")
    with pytest.raises(CommandError, match=r"^cannot host: the title is 150 characters long"):
        hana.host("T" * 150, 10, created_ms=1, nonce=bytes(16), now=net.now)
    net.room(hana)
    too_long = r"^That chat line is 594 characters long; the most is 500"
    with pytest.raises(CommandError, match=too_long):
        hana.chat("x" * 594, net.now)
