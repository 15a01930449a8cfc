"""Host succession and reunion after a partition, as pure decisions (docs/DESIGN.md section 3).

Every node notes when it last heard the room's authority (``now`` comes in from the shell).
Once the lease has run out, the co-host of rank ``i`` waits its turn (``lease + i`` steps, plus a
jitter the shell draws once), votes for itself, asks the rest of the authority set for votes when
a majority is needed (they grant only if they too have not heard the authority: pre-vote), and
publishes a signed claim of the next epoch on every link.  Members check the claim against the
state they hold and follow it; one whose state differs asks the claimant for a snapshot.

After a partition heals, the branch with the higher epoch wins: an authority that hears its room
at a higher epoch asks for that state, adopts it (saying how much of its own was undone), joins
again, and, if it is the room's host, reclaims the room with the next epoch and blocks again
every key it blocked alone.  A superseded co-host asks the new authority to block them.
"""

from __future__ import annotations

import logging

from p2pspaces.core import succession, wire
from p2pspaces.core.authority import AuthorityRole
from p2pspaces.core.context import Hooks, SessionContext
from p2pspaces.core.errors import ErrorCode, OutOfSync, PeerError, Refused
from p2pspaces.core.events import Converged, ErrorEvent
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.room import RoomState
from p2pspaces.core.succession import VoteBook

log = logging.getLogger("p2pspaces.session")

BLOCKS_KEPT_MAX = 1024


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class Succession:
    """One node's part in host succession."""

    def __init__(
        self, ctx: SessionContext, hooks: Hooks, reunion: Reunion, jitter_s: float
    ) -> None:
        self._ctx = ctx
        self._hooks = hooks
        self._reunion = reunion
        self._jitter_s = jitter_s
        self.book = VoteBook()
        self.last_heard = 0.0
        self._claiming: int | None = None
        self._not_before = 0.0
        self._votes: dict[NodeId, bytes] = {}

    def heard(self, peer: bytes, now: float) -> None:
        """A message arrived from ``peer``; if it is the authority, its lease is renewed."""
        state = self._ctx.state
        if state is not None and peer == state.authority:
            self.last_heard = now

    def forgive(self, late_s: float, now: float) -> None:
        """This node fell ``late_s`` behind (short of CPU, or suspended): the authority's
        messages of that time are still unread, so its lease runs on by that much."""
        self.last_heard = min(now, self.last_heard + late_s)

    def reset(self, now: float) -> None:
        """The authority changed or the room was (re)joined: start the lease afresh."""
        self.last_heard = now
        self._claiming = None
        self._not_before = 0.0
        self._votes.clear()

    def next_timer(self) -> float | None:
        """When this node may next act: its takeover turn, or the end of a vote wait."""
        ctx = self._ctx
        state = ctx.state
        if state is None or ctx.phase is not Phase.MEMBER:
            return None
        timing = ctx.timing
        deadline = succession.takeover_deadline(
            state, ctx.me, _ms(self.last_heard), _ms(timing.lease_s), _ms(timing.rank_step_s)
        )
        if deadline is None:
            return None
        return max(deadline / 1000 + self._jitter_s, self._not_before)

    def on_timer(self, now: float) -> None:
        """Start a takeover when this node's turn has come (or ask for votes again)."""
        ctx = self._ctx
        due = self.next_timer()
        state = ctx.state
        if due is None or state is None or now < due:
            return
        self._not_before = now + ctx.timing.vote_wait_s  # look again after a vote wait
        epoch = state.epoch + 1
        if not self.book.vote_for_self(epoch, ctx.me):
            return  # we voted for another co-host this epoch: wait for its claim
        self._claiming = epoch
        self._votes.clear()
        log.warning("the room's authority is silent; claiming epoch %d", epoch)
        if succession.votes_needed(state) <= 1:
            self._claim(now)
            return
        request = succession.vote_request(state, ctx.identity)
        for peer in state.authority_set():
            if peer not in (ctx.me, state.authority):
                ctx.send(peer, request)

    def on_vote_request(
        self,
        peer: NodeId,
        envelope: wire.Signed,
        message: wire.VoteRequest,
        data: bytes,
        now: float,
    ) -> None:
        """Another co-host asks for our vote."""
        state = self._ctx.state
        if state is None:
            return
        try:
            vote = self.book.consider(
                state,
                self._ctx.identity,
                envelope,
                message,
                now_ms=_ms(now),
                last_heard_ms=_ms(self.last_heard),
                lease_ms=_ms(self._ctx.timing.lease_s),
            )
        except Refused as exc:
            self._ctx.send(peer, wire.encode(wire.Error(ErrorCode.VOTE_REFUSED, exc.reason[:200])))
            return
        self._ctx.send(peer, vote)

    def on_vote(
        self, peer: NodeId, envelope: wire.Signed, vote: wire.Vote, data: bytes, now: float
    ) -> None:
        """A vote for us arrived; claim once there are enough."""
        state = self._ctx.state
        if state is None or vote.epoch != self._claiming or vote.epoch != state.epoch + 1:
            return
        if vote.candidate != self._ctx.me or envelope.signer != vote.voter:
            raise PeerError("vote for someone else, or signed by someone else")
        if vote.voter not in state.authority_set():
            raise PeerError("vote from outside the authority set")
        self._votes[vote.voter] = data
        if self.book.voted_for(vote.epoch) != self._ctx.me:
            return  # we gave our vote to a better-ranked co-host: its claim will come
        if len(self._votes) + 1 >= succession.votes_needed(state):
            self._claim(now)

    def _claim(self, now: float) -> None:
        ctx = self._ctx
        replica = ctx.replica
        if replica is None:
            return
        previous = replica.state.authority
        if replica.attestation is None:
            # The authority's word for our state (its update, or its heartbeat after a
            # snapshot) is what lets our claim join the room's proof of authority.
            log.warning("cannot claim the room: no attestation of our state from the authority")
            return
        self.book.seal(replica.state.epoch + 1)
        data = succession.make_claim(
            replica.state,
            ctx.identity,
            tuple(self._votes.values()),
            basis=replica.attestation,
            base_hash=replica.hash(),
        )
        replica.accept_takeover(succession.verify_claim(replica.state, data))
        ctx.claim, ctx.claim_epoch = data, replica.state.epoch
        ctx.send_all(data)
        log.info("took over the room as authority of epoch %d", replica.state.epoch)
        self._hooks.authority_changed(now, previous, took_over=True)

    def on_claim(
        self, peer: NodeId, envelope: wire.Signed, message: wire.Takeover, data: bytes, now: float
    ) -> None:
        """A co-host (or the returning host) claims the room; follow it if the claim is valid."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None or ctx.phase not in (Phase.MEMBER, Phase.AUTHORITY):
            return
        if self._revoked_claim(envelope, message):
            # A co-host the host took the appointment from claims our term's next epoch
            # anyway (from a state before): members that missed the change would follow it,
            # and a forger need never send the snapshot that would show it; reclaim at once.
            reason = "the co-host that claimed it is no longer one"
            self._reunion.refuse_branch(message.claimant, message.epoch, reason)
            return
        if message.claimant != replica.state.host and (message.base_seq, message.base_hash) != (
            replica.state.seq,
            replica.hash(),
        ):
            # A co-host's claim from a state we do not hold cannot be judged against ours (one
            # we dropped for silence while apart claimed from the state before): only its
            # snapshot, with the room's proof of authority, shows whether it is entitled.
            if envelope.signer != message.claimant or message.room_id != replica.room_id:
                raise PeerError("takeover not signed by its claimant, or for another room")
            if message.epoch <= replica.state.epoch:
                raise Refused(f"takeover of epoch {message.epoch} is not newer than ours")
            self._ask_for_state(message.claimant)
            return
        claim = succession.check_claim(replica.state, envelope, message, data)
        claimant = claim.takeover.claimant
        was_authority = ctx.is_authority
        previous = replica.state.authority
        try:
            replica.accept_takeover(claim)
        except OutOfSync:
            self._ask_for_state(claimant)
            return
        ctx.claim, ctx.claim_epoch = data, claim.takeover.epoch
        log.info(
            "%s is the room's authority now (epoch %d)",
            short_fingerprint(claimant),
            claim.takeover.epoch,
        )
        if was_authority:  # our members are linked to us, perhaps not to the claimant
            for other in sorted(ctx.links - {claimant}):
                ctx.send(other, data)
        # From a co-host, a claim means the authority went silent; from the host, a reclaim.
        taken = claimant != replica.state.host
        self._hooks.authority_changed(now, previous, took_over=taken)

    def _revoked_claim(self, envelope: wire.Signed, claim: wire.Takeover) -> bool:
        """Whether we are the host holding the room and ``claim`` is our term's next epoch
        by a co-host we demoted, removed or blocked in it."""
        ctx = self._ctx
        replica = ctx.room()
        state = replica.state
        return (
            ctx.is_authority
            and state.host == ctx.me
            and envelope.signer == claim.claimant
            and claim.room_id == replica.room_id
            and claim.epoch == state.epoch + 1
            and (claim.claimant in replica.revoked or claim.claimant in state.blocked)
        )

    def _ask_for_state(self, claimant: NodeId) -> None:
        """Our state differs from the one a claim is based on: the claimant's snapshot (an
        epoch newer than ours, checked with its proof of authority) puts us right; without a
        link to it, we make one.  A join, not a resync: if the new authority dropped us
        meanwhile, it takes us back."""
        ctx = self._ctx
        ctx.redirect = NodeId(claimant)
        join = wire.Request(ctx.room().room_id, 0, ctx.join_action())
        ctx.send(claimant, wire.seal_bytes(ctx.identity, join))


class Reunion:
    """After a partition heals, or when a crashed host comes back: rejoin, then reclaim."""

    def __init__(self, ctx: SessionContext, hooks: Hooks, authority: AuthorityRole) -> None:
        self._ctx = ctx
        self._hooks = hooks
        self._authority = authority
        self.pending_blocks: set[NodeId] = set()

    def on_heartbeat(self, peer: NodeId, beat: wire.Heartbeat) -> None:
        """Our room at a higher epoch than ours, while we think we hold it: ask for its state
        (only an authority answers)."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None or beat.room_id != replica.room_id or not ctx.is_authority:
            return
        if beat.epoch > replica.state.epoch:
            ctx.send(peer, wire.encode(wire.Resync(replica.room_id, replica.state.seq)))

    def refuse_branch(self, authority: NodeId, epoch: int, reason: str) -> None:
        """A branch of our room (``authority``'s, at ``epoch``) that we must not follow (see
        :meth:`~p2pspaces.core.ledger.Replica.branch_refusal`): say so; the host holding its
        room claims an epoch above the branch's, so the branch's members come back to it."""
        ctx = self._ctx
        replica = ctx.replica
        name = ctx.name_of(authority)
        log.warning("refused the room's state at epoch %d from %s: %s", epoch, name, reason)
        if replica is None or not ctx.is_authority or replica.state.host != ctx.me:
            return
        state = replica.state
        data = succession.make_claim(state, ctx.identity, epoch=epoch + 1, base_hash=replica.hash())
        replica.accept_takeover(succession.verify_claim(state, data))
        ctx.claim, ctx.claim_epoch = data, replica.state.epoch
        ctx.send_all(data)
        ctx.send_all(ctx.heartbeat())
        ctx.emit(ErrorEvent(ErrorCode.BRANCH_REFUSED, f"{name} tried to take the room: {reason}"))

    def superseded(self, old: RoomState, fresh: RoomState) -> None:
        """We were the authority of an older epoch; the room went on without us."""
        ctx = self._ctx
        self.pending_blocks = set(sorted(old.blocked - fresh.blocked)[:BLOCKS_KEPT_MAX])
        undone = max(0, old.seq - fresh.seq)
        ctx.emit(
            Converged(fresh.room_id, fresh.epoch, fresh.authority, undone, len(self.pending_blocks))
        )
        self._authority.reset()
        ctx.enter(Phase.REJOINING)
        if ctx.me not in fresh.members:
            join = wire.Request(fresh.room_id, 0, ctx.join_action())
            ctx.send(fresh.authority, wire.seal_bytes(ctx.identity, join))

    def come_back(self, state: RoomState) -> None:
        """We were dropped from the room while alive: rejoin (and, as its host, reclaim it)."""
        ctx = self._ctx
        ctx.enter(Phase.REJOINING)
        join = wire.Request(state.room_id, 0, ctx.join_action())
        ctx.send(state.authority, wire.seal_bytes(ctx.identity, join))

    def after_change(self, state: RoomState, now: float) -> None:
        """Once back in the room: the host reclaims it, then blocks again what it blocked."""
        ctx = self._ctx
        replica = ctx.replica
        if ctx.phase is not Phase.REJOINING or ctx.me not in state.members or replica is None:
            return
        if state.host != ctx.me:
            ctx.enter(Phase.MEMBER)
            self._ask_blocks(state)
            return
        previous = state.authority
        data = succession.make_claim(state, ctx.identity, base_hash=replica.hash())
        replica.accept_takeover(succession.verify_claim(state, data))
        ctx.claim, ctx.claim_epoch = data, replica.state.epoch
        ctx.enter(Phase.AUTHORITY)
        ctx.send_all(data)
        self._hooks.authority_changed(now, previous, took_over=False)
        for key in sorted(self.pending_blocks):
            self._authority.try_issue(wire.Action(wire.ActionKind.BLOCK, key), now)
        self.pending_blocks.clear()

    def _ask_blocks(self, state: RoomState) -> None:
        """A co-host back from a partition asks the authority to block what it blocked."""
        ctx = self._ctx
        for key in sorted(self.pending_blocks):
            if key not in state.blocked:
                request = wire.Request(state.room_id, 0, wire.Action(wire.ActionKind.BLOCK, key))
                ctx.send(state.authority, wire.seal_bytes(ctx.identity, request))
        self.pending_blocks.clear()
