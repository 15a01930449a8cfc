"""Host succession: who may claim the next epoch, when, and which claim wins.

Raft's terms with the host's own succession list in place of open voting (docs/DESIGN.md section 3):

* The authority heartbeats every second; its lease is :data:`LEASE_MS`.  Time is passed in as
  ``now`` (milliseconds); this module never reads a clock.
* When the lease has run out, the co-host of rank ``i`` (its place in the succession list, the
  current authority left out) may start a takeover at ``last_heard + lease + i * RANK_STEP_MS``
  (the shell adds a little jitter).
* It first asks the authority set for votes (pre-vote: a voter grants only if it too has not
  heard the authority within the lease, so one flaky laptop cannot dethrone a healthy host).  A
  voter signs at most one vote per epoch and remembers it (:class:`VoteBook`).
* A claim of epoch ``e + 1`` carries its votes.  With three in the authority set a majority is
  needed (the claimant counts itself).  With only one co-host, that co-host may claim alone; such
  a solo claim is outranked by any vote-backed one.  The host itself may always reclaim with a
  higher epoch: the room is its own.
* Among valid claims the order is total, so every member picks the same winner whatever order
  claims arrive in: higher epoch, then host over voted over solo, then lower rank, then the
  smaller key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from p2pspaces.core import wire
from p2pspaces.core.errors import Refused, Unentitled, WireError
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.room import RoomState
from p2pspaces.core.statebytes import state_hash
from p2pspaces.core.wire import Takeover, Vote, VoteRequest

LEASE_MS = 3_000
RANK_STEP_MS = 1_000
HEARTBEAT_MS = 1_000


class Leadership(Protocol):
    """What succession needs of a state: a full :class:`RoomState`, or the
    :class:`~p2pspaces.core.statebytes.StateHeader` a proof of authority carries."""

    @property
    def room_id(self) -> wire.RoomId: ...
    @property
    def host(self) -> NodeId: ...
    @property
    def epoch(self) -> int: ...
    @property
    def seq(self) -> int: ...
    @property
    def authority(self) -> NodeId: ...
    @property
    def cohosts(self) -> tuple[NodeId, ...]: ...
    @property
    def ended(self) -> bool: ...
    def authority_set(self) -> tuple[NodeId, ...]: ...


class Strength(enum.IntEnum):
    """How well a claim is backed; higher wins within an epoch."""

    SOLO = 1
    VOTED = 2
    HOST = 3


@dataclass(frozen=True, slots=True)
class Claim:
    """A verified takeover claim and its rank among competing claims."""

    takeover: Takeover
    envelope: bytes
    strength: Strength
    rank: int

    def key(self) -> tuple[int, int, int, bytes]:
        """Sort key: the greatest key wins."""
        # The smaller key wins the last tie, so it is inverted to sort last-is-greatest.
        inverted = bytes(255 - b for b in self.takeover.claimant)
        return (self.takeover.epoch, self.strength, -self.rank, inverted)


def successors(state: Leadership) -> tuple[NodeId, ...]:
    """Co-hosts who may take over, in order (the current authority left out)."""
    return tuple(c for c in state.cohosts if c != state.authority)


def rank(state: Leadership, node: bytes) -> int | None:
    """``node``'s place in the succession order (0 first), or None if it is not a successor."""
    order = successors(state)
    return order.index(NodeId(node)) if node in order else None


def lease_expired(last_heard_ms: int, now_ms: int, lease_ms: int = LEASE_MS) -> bool:
    """Whether the authority has been silent for longer than its lease."""
    return now_ms - last_heard_ms > lease_ms


def takeover_deadline(
    state: RoomState,
    node: bytes,
    last_heard_ms: int,
    lease_ms: int = LEASE_MS,
    step_ms: int = RANK_STEP_MS,
) -> int | None:
    """When ``node`` may start a takeover if the authority stays silent, or None if never."""
    place = rank(state, node)
    if place is None or state.ended:
        return None
    return last_heard_ms + lease_ms + place * step_ms


def votes_needed(state: Leadership) -> int:
    """Votes (the claimant's own included) a non-host claim needs: a majority of the set."""
    size = len(state.authority_set())
    return 1 if size <= 2 else size // 2 + 1


def vote_request(state: RoomState, candidate: Identity) -> bytes:
    """The signed pre-vote request of ``candidate`` for the next epoch."""
    request = VoteRequest(state.room_id, state.epoch + 1, candidate.node_id, state.seq)
    return wire.seal_bytes(candidate, request)


class VoteBook:
    """The votes this node has signed: at most one per epoch, never forgotten."""

    def __init__(self) -> None:
        self._granted: dict[int, NodeId] = {}
        self._own: set[int] = set()
        """Epochs where our only vote is for ourselves and we have not claimed yet."""

    def consider(
        self,
        state: RoomState,
        voter: Identity,
        envelope: wire.Signed,
        request: VoteRequest,
        *,
        now_ms: int,
        last_heard_ms: int,
        lease_ms: int = LEASE_MS,
    ) -> bytes:
        """Return a signed vote for the (opened) request, or raise :class:`Refused`."""
        if envelope.signer != request.candidate:
            raise WireError("vote request not signed by its candidate")
        if request.room_id != state.room_id or request.epoch != state.epoch + 1:
            raise Refused("vote request for another room or epoch")
        if rank(state, request.candidate) is None:
            raise Refused("candidate is not in the succession list")
        if request.base_seq < state.seq:
            raise Refused("candidate's state is behind this voter's")
        if not lease_expired(last_heard_ms, now_ms, lease_ms):
            raise Refused("the authority is alive")
        chosen = self._granted.setdefault(request.epoch, request.candidate)
        if chosen != request.candidate and not self._give_way(state, request, voter.node_id):
            raise Refused(f"already voted in epoch {request.epoch}")
        vote = Vote(state.room_id, request.epoch, request.candidate, voter.node_id)
        return wire.seal_bytes(voter, vote)

    def vote_for_self(self, epoch: int, node: NodeId) -> bool:
        """Record a candidate's own vote; False if it already voted for someone else."""
        if self._granted.setdefault(epoch, node) != node:
            return False
        self._own.add(epoch)
        return True

    def voted_for(self, epoch: int) -> NodeId | None:
        """Whom this node's one vote of ``epoch`` went to."""
        return self._granted.get(epoch)

    def seal(self, epoch: int) -> None:
        """We claimed ``epoch``: our self-vote can no longer be given away."""
        self._own.discard(epoch)

    def _give_way(self, state: RoomState, request: VoteRequest, me: NodeId) -> bool:
        """Two co-hosts that ran at once have each voted only for themselves: the one ranked
        lower gives its vote to the other (it has not claimed, and will not), so a split vote
        cannot leave the room without an authority for good."""
        epoch = request.epoch
        mine, theirs = rank(state, me), rank(state, request.candidate)
        if epoch not in self._own or mine is None or theirs is None or theirs >= mine:
            return False
        self._own.discard(epoch)
        self._granted[epoch] = request.candidate
        return True


def make_claim(
    state: RoomState,
    claimant: Identity,
    votes: tuple[bytes, ...] = (),
    *,
    basis: bytes = b"",
    epoch: int | None = None,
    base_hash: bytes | None = None,
) -> bytes:
    """The signed takeover by ``claimant`` of the next epoch (or of ``epoch``: a host
    reclaiming over a newer branch), based on ``state`` (whose hash the caller may know);
    ``basis`` attests ``state``.  :class:`Refused` if the epoch would pass the limit."""
    epoch = state.epoch + 1 if epoch is None else epoch
    if epoch >= wire.COUNTER_MAX:
        raise Refused("the room's epochs are at their limit")
    digest = base_hash if base_hash is not None else state_hash(state)
    claim = Takeover(state.room_id, epoch, claimant.node_id, state.seq, digest, votes, basis)
    return wire.seal_bytes(claimant, claim)


def verify_claim(state: Leadership, data: bytes) -> Claim:
    """Check a signed takeover against the state this member holds; raise if it is invalid."""
    envelope, claim = wire.open_signed_bytes(data, Takeover)
    return check_claim(state, envelope, claim, data)


def check_claim(state: Leadership, envelope: wire.Signed, claim: Takeover, data: bytes) -> Claim:
    """:func:`verify_claim` for a claim already opened (its signature checked)."""
    if envelope.signer != claim.claimant:
        raise WireError("takeover not signed by its claimant")
    if claim.room_id != state.room_id:
        raise Refused("takeover for another room")
    if claim.epoch <= state.epoch:
        raise Refused(f"takeover of epoch {claim.epoch} is not newer than {state.epoch}")
    if claim.epoch >= wire.COUNTER_MAX:
        raise Unentitled("takeover of an epoch at the limit")
    if claim.claimant == state.host:
        return Claim(claim, data, Strength.HOST, -1)
    if claim.epoch != state.epoch + 1:
        raise Unentitled(f"a co-host claims the next epoch, not epoch {claim.epoch}")
    place = rank(state, claim.claimant)
    if place is None:
        raise Unentitled("claimant is not in the succession list")
    voters = _count_votes(state, claim)
    if voters >= max(2, votes_needed(state)):
        strength = Strength.VOTED
    elif votes_needed(state) == 1:
        strength = Strength.SOLO
    else:
        raise Unentitled(f"takeover has {voters} votes, needs {votes_needed(state)}")
    return Claim(claim, data, strength, place)


def _count_votes(state: Leadership, claim: Takeover) -> int:
    members = set(state.authority_set())
    voters = {claim.claimant}
    for data in claim.votes:
        envelope, vote = wire.open_signed_bytes(data, Vote)
        if envelope.signer != vote.voter or vote.voter not in members:
            raise WireError("vote not signed by a member of the authority set")
        if (vote.room_id, vote.epoch, vote.candidate) != (
            claim.room_id,
            claim.epoch,
            claim.claimant,
        ):
            raise Refused("vote is for another room, epoch or candidate")
        voters.add(vote.voter)
    return len(voters)


def best(claims: list[Claim]) -> Claim:
    """The winning claim among valid ones (the same whatever their order)."""
    return max(claims, key=Claim.key)
