"""Byzantine members: a session that signs anything with its own key (issue 17).

Each attack is made the way a modified node would make it, with the project's own modules, and
sent over a real link of the fake network; each is refused, the room stays as it was, and the
sender (when it signed the forgery itself) loses its link for the penalty time.
"""

from __future__ import annotations

from p2pspaces.core import succession, wire
from p2pspaces.core.events import ErrorEvent
from p2pspaces.core.ledger import Replica
from p2pspaces.core.session import Phase, RoomSession
from p2pspaces.core.wire import Action, ActionKind

from .byzantine import forged_snapshot
from .kit import FakeNet, hashes


def _room() -> tuple[FakeNet, RoomSession, RoomSession, RoomSession, RoomSession]:
    net = FakeNet()
    hana, cody, ann, mal = (net.add(n) for n in ("Hana", "Cody", "Ann", "Mal"))
    net.room(hana, cody, ann, mal)
    net.act(hana, ActionKind.INVITE_SPEAKER, cody)
    net.settle(0.2)
    net.act(cody, ActionKind.ACCEPT_INVITE)
    net.settle(0.2)
    net.act(hana, ActionKind.ADD_COHOST, cody)
    net.settle(0.5)
    return net, hana, cody, ann, mal


def _inject(net: FakeNet, sender: RoomSession, receiver: RoomSession, data: bytes) -> None:
    net.connect(sender.me, receiver.me)
    net.settle(0.05)
    net._send(sender.me, receiver.me, data)
    net.settle(0.5)


def test_a_listener_cannot_take_the_room_from_the_host() -> None:
    net, hana, cody, ann, mal = _room()
    before = hana.state
    _inject(net, mal, hana, forged_snapshot(mal))
    assert hana.is_authority and hana.state.title == "Friday demo"  # type: ignore[union-attr]
    assert hana.state.authority == hana.me and not hana.state.blocked  # type: ignore[union-attr]
    assert hana.state.epoch == before.epoch  # type: ignore[union-attr]
    assert (hana.me, mal.me) in net.penalized  # it signed the forgery itself: kept out
    net.settle(2.0)
    assert len(hashes(hana, cody, ann)) == 1


def test_members_refuse_a_listeners_forged_snapshot_while_the_host_lives() -> None:
    net, hana, cody, ann, mal = _room()
    forged = forged_snapshot(mal)
    for member in (ann, cody):
        _inject(net, mal, member, forged)
    net.settle(1.0)
    for session in (hana, cody, ann):
        assert session.state.authority == hana.me, session.name  # type: ignore[union-attr]
        assert session.state.title == "Friday demo"  # type: ignore[union-attr]
    assert len(hashes(hana, cody, ann)) == 1


def test_with_the_host_dead_the_real_co_host_takes_over_not_the_forger() -> None:
    net, hana, cody, ann, mal = _room()
    net.crash(hana)
    _inject(net, mal, ann, forged_snapshot(mal))
    net.run_until(lambda: ann.state.authority == cody.me, limit=8)  # type: ignore[union-attr]
    net.settle(1.0)
    assert ann.state.title == "Friday demo" and not ann.state.ended  # type: ignore[union-attr]
    assert cody.is_authority


def test_a_blocked_person_with_a_fresh_key_cannot_make_itself_co_host() -> None:
    net, hana, cody, ann, mal = _room()
    net.act(hana, ActionKind.BLOCK, mal)
    net.settle(1.0)
    fresh = net.add("Mallory again")
    net.join(fresh, hana)
    net.run_until(lambda: fresh.phase is Phase.MEMBER, limit=5)
    _inject(net, fresh, hana, forged_snapshot(fresh))
    _inject(net, fresh, ann, forged_snapshot(fresh))
    for session in (hana, ann, cody):
        assert fresh.me not in session.state.cohosts, session.name  # type: ignore[union-attr]
        assert session.state.authority == hana.me  # type: ignore[union-attr]


def test_the_largest_epoch_cannot_freeze_the_room() -> None:
    net, hana, cody, ann, mal = _room()
    for epoch in (2**63 - 1, wire.COUNTER_MAX, wire.COUNTER_MAX - 1):
        _inject(net, mal, hana, forged_snapshot(mal, epoch=epoch))
        net.penalized.clear()
    assert hana.is_authority and hana.state.epoch == 0  # type: ignore[union-attr]
    net.act(hana, ActionKind.SET_TITLE, text="Still mine")
    net.settle(0.5)
    assert ann.state.title == "Still mine"  # type: ignore[union-attr]
    # ...and the co-host can still take over when the host goes.
    net.crash(hana)
    net.run_until(lambda: ann.state.authority == cody.me, limit=8)  # type: ignore[union-attr]


def test_a_joiner_checks_the_custody_of_a_co_hosts_snapshot() -> None:
    net, hana, cody, ann, _mal = _room()
    net.crash(hana)
    net.run_until(lambda: ann.state.authority == cody.me, limit=8)  # type: ignore[union-attr]
    net.settle(1.0)
    late = net.add("Late")
    net.join(late, cody)
    net.run_until(lambda: late.phase is Phase.MEMBER, limit=5)
    assert late.replica is not None and late.replica.term.root == 0
    assert len(late.replica.term.custody) == 1
    net.settle(0.5)
    assert len(hashes(cody, ann, late)) == 1


def test_a_demoted_co_host_that_claims_anyway_loses_the_members_at_once() -> None:
    # Cody keeps the appointment it had (its state then, the authority's word for it) and,
    # once demoted, claims the room from it: Ann missed the demotion and follows the claim.
    # The host does not wait for Cody's snapshot (a forger need never send one): it reclaims.
    net, hana, cody, ann, _ = _room()
    replica = cody.replica
    assert replica is not None and replica.attestation is not None
    kept = (replica.state, replica.attestation, replica.hash())
    net.partition([hana, cody], [ann])
    net.act(hana, ActionKind.REMOVE_COHOST, cody)
    net.settle(0.2)
    assert cody.me not in hana.state.cohosts  # type: ignore[union-attr]
    net.heal()  # back before any link timed out: Ann still holds the state before
    state, basis, base_hash = kept
    claim = succession.make_claim(state, cody._ctx.identity, basis=basis, base_hash=base_hash)
    for member in (ann, hana):
        net._send(cody.me, member.me, claim)
    net.settle(2.0)
    for session in (hana, ann):
        assert session.state.authority == hana.me, session.name  # type: ignore[union-attr]
        assert session.state.epoch == state.epoch + 2, session.name  # type: ignore[union-attr]
    refused = [e for e in net.seen(hana, ErrorEvent) if e.code == "branch_refused"]
    assert refused and "Cody" in refused[0].reason
    assert len(hashes(hana, ann)) == 1


def test_an_authority_that_shows_members_different_rooms_is_caught_by_their_heartbeats() -> None:
    # Hana signs two valid but different changes for one seq: Ann (a speaker) gets one, Bob
    # (a speaker) and Lee (a listener) the other.  Nobody is shown both by Hana; the members'
    # own heartbeats show the fork, and everyone ends up holding the proof.
    net = FakeNet()
    hana, ann, bob, lee = (net.add(n) for n in ("Hana", "Ann", "Bob", "Lee"))
    net.room(hana, ann, bob, lee)
    for speaker in (ann, bob):
        net.act(hana, ActionKind.INVITE_SPEAKER, speaker)
        net.settle(0.2)
        net.act(speaker, ActionKind.ACCEPT_INVITE)
        net.settle(0.5)
    replica = hana.replica
    assert replica is not None
    versions = []
    for title in ("Ann's room", "Bob's room"):
        snapshot = wire.open_signed_bytes(replica.snapshot(hana._ctx.identity), wire.Snapshot)
        twin = Replica.from_opened(*snapshot)
        versions.append(
            twin.issue(hana._ctx.identity, hana.me, Action(ActionKind.SET_TITLE, text=title))
        )
    net._send(hana.me, ann.me, versions[0])
    for member in (bob, lee):
        net._send(hana.me, member.me, versions[1])
    net.settle(3.0)
    assert ann.state.title == "Ann's room" and lee.state.title == "Bob's room"  # type: ignore[union-attr]
    for member in (ann, bob, lee):
        alarms = [e for e in net.seen(member, ErrorEvent) if e.code == "equivocation"]
        assert len(alarms) == 1, member.name
        assert member.equivocations, member.name
    assert not net.penalized  # members showing each other the authority's word did no wrong
