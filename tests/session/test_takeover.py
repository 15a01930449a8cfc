"""Host succession, a host coming back, partitions healing: in memory, every arrival order."""

from __future__ import annotations

import itertools

import pytest

from p2pspaces.app.words import Narrator
from p2pspaces.core.events import AuthorityChanged, Converged, Ended, Left
from p2pspaces.core.room import Role
from p2pspaces.core.session import Phase, RoomSession
from p2pspaces.core.wire import ActionKind

from .kit import FakeNet, hashes


def _promote(net: FakeNet, host: RoomSession, member: RoomSession, *, cohost: bool) -> None:
    net.act(host, ActionKind.INVITE_SPEAKER, member)
    net.run_until(lambda: member.state.members[member.me].invited)  # type: ignore[union-attr]
    net.act(member, ActionKind.ACCEPT_INVITE)
    net.run_until(lambda: host.state.members[member.me].role is Role.SPEAKER)  # type: ignore[union-attr]
    if cohost:
        net.act(host, ActionKind.ADD_COHOST, member)
        net.run_until(lambda: member.me in host.state.cohosts)  # type: ignore[union-attr]
    net.settle(0.3)


def _host_with_cohost_dies() -> tuple[FakeNet, RoomSession, RoomSession, RoomSession]:
    """Hana hosts, Cody co-hosts, Ann listens; Hana's laptop dies."""
    net = FakeNet()
    hana, cody, ann = net.add("Hana"), net.add("Cody"), net.add("Ann")
    net.room(hana, cody, ann)
    _promote(net, hana, cody, cohost=True)
    net.crash(hana)
    return net, hana, cody, ann


def test_one_cohost_takes_over_and_the_dead_host_leaves_the_roster_at_once() -> None:
    net, hana, cody, ann = _host_with_cohost_dies()
    net.run_until(lambda: cody.phase is Phase.AUTHORITY, limit=3)
    # The silent host is off the roster in the same moment the co-host takes over.
    assert hana.me not in cody.state.members  # type: ignore[union-attr]
    net.run_until(lambda: ann.state.authority == cody.me, limit=3)  # type: ignore[union-attr]
    net.settle(1.0)
    assert len(hashes(cody, ann)) == 1
    assert hana.me not in ann.state.members  # type: ignore[union-attr]
    assert [e.name for e in net.seen(ann, AuthorityChanged)] == ["Cody"]
    # Her name is still known (from the genesis she signed): "hosted by Hana", never a key.
    assert ann.replica is not None and ann.replica.host_name == "Hana"


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_two_cohosts_agree_on_one_authority_in_every_arrival_order(order: tuple[int, ...]) -> None:
    net = FakeNet(seed=sum(i * 10**k for k, i in enumerate(order)))
    hana, cody, dina, ann = net.add("Hana"), net.add("Cody"), net.add("Dina"), net.add("Ann")
    net.room(hana, cody, dina, ann)
    _promote(net, hana, cody, cohost=True)
    _promote(net, hana, dina, cohost=True)
    net.jitter = 0.05  # messages overtake each other
    # Which co-host notices first depends on the order; both may run for the same epoch.
    spread = {cody.me: order[0] * 0.05, dina.me: order[1] * 0.05}
    cody.succession._jitter_s, dina.succession._jitter_s = spread[cody.me], spread[dina.me]
    net.crash(hana)
    net.run(4.0)
    authorities = {s.state.authority for s in (cody, dina, ann)}  # type: ignore[union-attr]
    assert len(authorities) == 1
    assert authorities <= {cody.me, dina.me}
    assert len(hashes(cody, dina, ann)) == 1


def test_a_crashed_host_comes_back_and_reclaims_its_room() -> None:
    net = FakeNet()
    hana, cody, ann = net.add("Hana"), net.add("Cody"), net.add("Ann")
    net.room(hana, cody, ann)
    _promote(net, hana, cody, cohost=True)
    net.crash(hana)
    net.run_until(lambda: ann.state.authority == cody.me, limit=5)  # type: ignore[union-attr]
    net.run(1.0)  # the others' links to the dead laptop time out
    # Hana's laptop restarts (same key, fresh memory) and runs the same command again.
    net.dead.discard(hana.me)
    back = RoomSession(hana._ctx.identity, "Hana", net.timing)
    net.sessions[hana.me] = back
    net.events[back.me] = []
    net.join(back, cody, reclaim=True)
    net.run_until(lambda: back.phase is Phase.AUTHORITY, limit=5)
    net.settle(1.0)
    assert {s.state.authority for s in (back, cody, ann)} == {hana.me}  # type: ignore[union-attr]
    assert len(hashes(back, cody, ann)) == 1
    # Hana is told she is back and taking her Space over, never that she joined as a listener.
    narrator = Narrator(back.me, keys=True)
    told = [line.text for event in net.events[back.me] for line in narrator.tell(event)]
    assert not any("as a listener" in text for text in told), told
    assert any("taking your Space back" in text for text in told), told
    assert any(text.startswith("You are hosting now (the host is back)") for text in told), told


def test_partition_heals_to_the_higher_epoch_and_keeps_blocks_from_both_sides() -> None:
    net = FakeNet()
    hana, cody, ann, bob, eve, mal = (
        net.add(n) for n in ("Hana", "Cody", "Ann", "Bob", "Eve", "Mal")
    )
    net.room(hana, cody, ann, bob, eve, mal)
    _promote(net, hana, cody, cohost=True)
    net.partition([hana, eve], [cody, ann, bob, mal])
    net.run_until(lambda: cody.phase is Phase.AUTHORITY, limit=5)
    net.act(hana, ActionKind.BLOCK, eve)  # Hana blocks Eve on her side...
    net.act(cody, ActionKind.BLOCK, mal)  # ...Cody blocks Mal on his.
    net.settle(1.0)
    net.heal()
    # mDNS would show each authority the other advertising the room: link them.
    net.connect(hana.me, cody.me)
    net.run_until(lambda: hana.phase is Phase.AUTHORITY and hana.state.epoch > 1, limit=8)  # type: ignore[union-attr]
    net.settle(2.0)
    for session in (hana, cody, ann, bob):
        assert session.state.blocked >= {eve.me, mal.me}, session.name  # type: ignore[union-attr]
    assert len(hashes(hana, cody, ann, bob)) == 1
    converged = net.seen(hana, Converged)
    assert converged and converged[0].blocks_kept == 1
    assert [e.reason for e in net.seen(mal, Left)] == ["blocked from the room"]


def test_members_cut_off_during_a_takeover_follow_it_after_the_heal() -> None:
    # Found by the state machine: a clock jump makes the co-host claim the room while the
    # members are cut off; they come back still in the old epoch, linked to the old host.
    net = FakeNet()
    hana, cody, ann, bob = (net.add(n) for n in ("Hana", "Cody", "Ann", "Bob"))
    net.room(hana, cody, ann, bob)
    _promote(net, hana, cody, cohost=True)
    net.partition([hana, cody], [ann, bob])
    net.now += 1.0
    net.run(0.01)
    net.heal()
    net.run(8.0)
    in_room = [s for s in (hana, cody, ann, bob) if s.phase in (Phase.MEMBER, Phase.AUTHORITY)]
    assert len(in_room) == 4
    assert len(hashes(*in_room)) == 1


def test_a_member_blocked_in_the_other_branch_learns_it_from_the_host_it_is_redirected_to() -> None:
    # Ann sits out a partition on the co-host's side while the host blocks her on its own; after
    # the heal she must learn she is out.  (The state machine found a longer path to the same
    # place where she did not: redirected to the host, she ignored its "blocked" refusal
    # because the host was not the authority of her old epoch, and redialed for ever.)
    net = FakeNet()
    hana, cody, ann, bob = (net.add(n) for n in ("Hana", "Cody", "Ann", "Bob"))
    net.room(hana, cody, ann, bob)
    _promote(net, hana, cody, cohost=True)
    net.partition([hana, bob], [cody, ann])
    net.run_until(lambda: cody.phase is Phase.AUTHORITY, limit=5)
    net.act(hana, ActionKind.BLOCK, ann)
    net.settle(1.0)
    net.partition([hana, bob, cody], [ann])  # Ann misses the heal and the host's reclaim
    net.connect(hana.me, cody.me)  # what mDNS does after the heal
    net.settle(3.0)
    net.heal()
    net.settle(8.0)
    assert [e.reason for e in net.seen(ann, Left)] == ["blocked from the room"]
    assert ann.phase is Phase.IDLE
    assert len(hashes(hana, cody, bob)) == 1
    assert ann.me in hana.state.blocked  # type: ignore[union-attr]


def test_a_host_that_dropped_its_silent_cohost_still_rejoins_the_cohosts_branch() -> None:
    # Found in the namespaces: apart long enough, the host drops the co-host for silence; the
    # co-host's claim, based on a state from before, must not read as a forgery to the host.
    net = FakeNet()
    hana, cody, ann = (net.add(n) for n in ("Hana", "Cody", "Ann"))
    net.room(hana, cody, ann)
    _promote(net, hana, cody, cohost=True)
    net.partition([hana], [cody, ann])
    net.run_until(lambda: cody.phase is Phase.AUTHORITY, limit=5)
    net.settle(net.timing.grace_s + net.timing.peer_timeout_s + 1)
    assert cody.me not in hana.state.members  # type: ignore[union-attr]
    net.heal()
    net.connect(hana.me, cody.me)
    net.run_until(lambda: hana.phase is Phase.AUTHORITY and hana.state.epoch > 1, limit=8)  # type: ignore[union-attr]
    net.settle(2.0)
    assert not net.penalized
    assert len(hashes(hana, cody, ann)) == 1
    assert cody.me in hana.state.members  # type: ignore[union-attr]


def test_members_of_a_space_whose_host_died_with_no_co_host_go_back_to_the_lobby() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann, bob)
    net.crash(hana)
    net.run(net.timing.orphan_s - 5)
    assert {ann.phase, bob.phase} == {Phase.MEMBER}  # a restart of the host's app fits here
    net.run(6)
    for member in (ann, bob):
        assert member.phase is Phase.ENDED
        [ended] = net.seen(member, Ended)
        assert ended.orphaned_by == hana.me
        assert ended.reason == "no word from Hana for 30 s and there was no co-host to take over"
    assert not net.linked


def test_members_with_a_co_host_never_give_up_on_the_space() -> None:
    net, _, cody, ann = _host_with_cohost_dies()
    net.run(net.timing.orphan_s * 2)
    assert ann.phase is Phase.MEMBER and cody.phase is Phase.AUTHORITY
    assert not net.seen(ann, Ended)
