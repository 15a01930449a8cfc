"""Host succession: deadlines, votes, and one winner whatever the order claims arrive in."""

from __future__ import annotations

import itertools

import pytest

from p2pspaces.core import succession, wire
from p2pspaces.core.errors import Refused, WireError
from p2pspaces.core.ledger import Replica
from p2pspaces.core.succession import LEASE_MS, RANK_STEP_MS, Strength, VoteBook
from p2pspaces.core.wire import Action, ActionKind

from .kit import Space, full_space, person

LAST_HEARD = 50_000
LATE = LAST_HEARD + LEASE_MS + 5 * RANK_STEP_MS


def test_deadlines_follow_the_succession_order() -> None:
    space = full_space()
    state = space.state
    assert (
        succession.takeover_deadline(state, space.key("cora"), LAST_HEARD) == LAST_HEARD + LEASE_MS
    )
    assert succession.takeover_deadline(state, space.key("cole"), LAST_HEARD) == (
        LAST_HEARD + LEASE_MS + RANK_STEP_MS
    )
    assert succession.takeover_deadline(state, space.key("sam"), LAST_HEARD) is None
    assert succession.takeover_deadline(state, space.key("host"), LAST_HEARD) is None


def test_lease_expiry_uses_the_time_passed_in() -> None:
    assert not succession.lease_expired(LAST_HEARD, LAST_HEARD + LEASE_MS)
    assert succession.lease_expired(LAST_HEARD, LAST_HEARD + LEASE_MS + 1)


def _vote(
    space: Space, voter: str, candidate: str, now: int = LATE, book: VoteBook | None = None
) -> bytes:
    envelope, request = wire.open_signed_bytes(
        succession.vote_request(space.state, space.people[candidate]), wire.VoteRequest
    )
    return (book or VoteBook()).consider(
        space.state, space.people[voter], envelope, request, now_ms=now, last_heard_ms=LAST_HEARD
    )


def test_a_voter_refuses_while_it_still_hears_the_authority() -> None:
    space = full_space()
    with pytest.raises(Refused, match="the authority is alive"):
        _vote(space, "cole", "cora", now=LAST_HEARD + 100)


def test_a_voter_signs_at_most_one_vote_per_epoch() -> None:
    space = full_space()
    book = VoteBook()
    _vote(space, "host", "cora", book=book)
    _vote(space, "host", "cora", book=book)  # the same candidate again is fine
    with pytest.raises(Refused, match="already voted in epoch 1"):
        _vote(space, "host", "cole", book=book)


def test_only_successors_get_votes() -> None:
    space = full_space()
    with pytest.raises(Refused, match="not in the succession list"):
        _vote(space, "cora", "sam")


def _claims(space: Space) -> dict[str, bytes]:
    """Cora's claim backed by Cole's vote, and Cole's claim backed only by itself."""
    cora_book, cole_book = VoteBook(), VoteBook()
    assert cora_book.vote_for_self(1, space.key("cora"))
    cole_vote = _vote(space, "cole", "cora", book=cole_book)
    assert not cole_book.vote_for_self(1, space.key("cole"))
    return {
        "cora": succession.make_claim(
            space.state, space.people["cora"], (cole_vote,), basis=space.updates[-1]
        ),
        "cole": succession.make_claim(space.state, space.people["cole"], basis=space.updates[-1]),
    }


def test_with_three_in_the_set_a_claim_needs_a_majority() -> None:
    space = full_space()
    claims = _claims(space)
    assert succession.verify_claim(space.state, claims["cora"]).strength is Strength.VOTED
    with pytest.raises(Refused, match="has 1 votes, needs 2"):
        succession.verify_claim(space.state, claims["cole"])


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_exactly_one_claim_wins_whatever_the_arrival_order(order: tuple[int, ...]) -> None:
    space = Space.create()
    space.join("cora", 2, "cohost")
    state = space.state
    solo_cora = succession.make_claim(state, space.people["cora"])
    # A stranger's claim and a co-host's solo claim: only the valid one counts.
    stranger = succession.make_claim(state, person(66))
    claims = [solo_cora, stranger, solo_cora]
    valid = []
    for index in order:
        try:
            valid.append(succession.verify_claim(state, claims[index]))
        except (Refused, WireError):
            continue
    assert {c.takeover.claimant for c in valid} == {space.key("cora")}
    assert succession.best(valid).takeover.claimant == space.key("cora")


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_competing_valid_claims_resolve_to_the_same_winner(order: tuple[int, ...]) -> None:
    space = full_space()
    state = space.state
    cole_vote = _vote(space, "cole", "cora")
    cora_vote = _vote(space, "cora", "cole")
    host_vote = _vote(space, "host", "cole")
    candidates = [
        succession.make_claim(state, space.people["cora"], (cole_vote,)),
        succession.make_claim(state, space.people["cole"], (cora_vote, host_vote)),
        succession.make_claim(state, space.people["cole"], (cora_vote,)),
    ]
    arrived = [succession.verify_claim(state, candidates[i]) for i in order]
    winner = succession.best(arrived)
    # All three are vote-backed for epoch 1: the lower rank (cora) wins.
    assert winner.takeover.claimant == space.key("cora")


def test_members_follow_the_winning_claim() -> None:
    space = full_space()
    claim = succession.verify_claim(space.state, _claims(space)["cora"])
    member = Replica.from_genesis(space.replica.genesis)
    for data in space.updates:
        member.receive(data)
    member.accept_takeover(claim)
    assert member.state.authority == space.key("cora")
    assert member.state.epoch == 1
    # The new authority's updates are accepted, the old host's are not.
    cora_replica = Replica.from_genesis(space.replica.genesis)
    for data in space.updates:
        cora_replica.receive(data)
    cora_replica.accept_takeover(claim)
    update = cora_replica.issue(space.people["cora"], space.key("lee"), _raise())
    member.receive(update)
    assert member.hash() == cora_replica.hash()


def _raise() -> Action:
    return Action(ActionKind.RAISE_HAND)


def test_a_returning_host_reclaims_with_a_higher_epoch() -> None:
    space = full_space()
    state = space.state
    cora_claim = succession.verify_claim(state, _claims(space)["cora"])
    member = Replica(state, space.replica.genesis)
    member.accept_takeover(cora_claim)
    # The host comes back, learns epoch 1 and claims epoch 2 with no votes: it owns the room.
    host_claim = succession.verify_claim(
        member.state, succession.make_claim(member.state, space.host)
    )
    assert host_claim.strength is Strength.HOST
    assert succession.best([cora_claim, host_claim]) is host_claim
    member.accept_takeover(host_claim)
    assert (member.state.epoch, member.state.authority) == (2, space.key("host"))


def test_a_claim_that_is_not_newer_is_refused() -> None:
    space = full_space()
    claim = succession.make_claim(space.state, space.people["cora"])
    member = Replica(space.state, space.replica.genesis)
    member.accept_takeover(
        succession.verify_claim(space.state, succession.make_claim(space.state, space.host))
    )
    with pytest.raises(Refused, match="not newer than 1"):
        succession.verify_claim(member.state, claim)


def test_a_solo_claim_loses_to_a_voted_claim_of_the_same_epoch() -> None:
    space = Space.create()
    space.join("cora", 2, "cohost")
    solo = succession.verify_claim(
        space.state, succession.make_claim(space.state, space.people["cora"])
    )
    assert solo.strength is Strength.SOLO
    voted = succession.Claim(solo.takeover, solo.envelope, Strength.VOTED, 0)
    assert succession.best([solo, voted]) is voted


def test_a_vote_for_someone_else_does_not_count() -> None:
    space = full_space()
    vote_for_cole = _vote(space, "host", "cole")
    claim = succession.make_claim(space.state, space.people["cora"], (vote_for_cole,))
    with pytest.raises(Refused, match="another room, epoch or candidate"):
        succession.verify_claim(space.state, claim)
