"""The member's half of a room session: signed updates and snapshots in, verified, applied.

A member holds one link to the authority (docs/DESIGN.md section 4).  It asks to join when that link
comes up (and again after a reconnect: the authority answers a member with its snapshot), applies
each signed update its replica verifies, asks for a snapshot (at most once per
:attr:`Timing.resync_s`) when an update or a heartbeat shows it out of step, and adopts a newer
epoch's snapshot.  Any link may carry an update: what counts is the authority's signature.
"""

from __future__ import annotations

import logging

from p2pspaces.core import wire
from p2pspaces.core.context import Hooks, SessionContext
from p2pspaces.core.errors import ErrorCode, OutOfSync, PeerError, Refused
from p2pspaces.core.events import ErrorEvent, GuestRefused, Joined
from p2pspaces.core.identity import NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.takeover import Reunion
from p2pspaces.core.wire import RoomId

log = logging.getLogger("p2pspaces.session")

FLOODING = ErrorCode.FLOODING
"""The error code a node sends a peer it drops for breaking the message caps."""
MISBEHAVED = "misbehaved"
"""The error code a node sends a peer it drops for what no honest node sends (a forgery)."""


JOIN_LINK_TRIES = 3
"""Links to the room's authority that may break before a join (by title or id) gives up."""
SHOWN_MAX = 1024
"""Peers we showed the authority's word for our state to (once per seq each), remembered."""


class MemberRole:
    """What a node does as a member (and while joining)."""

    def __init__(self, ctx: SessionContext, hooks: Hooks, reunion: Reunion) -> None:
        self._ctx = ctx
        self._hooks = hooks
        self._reunion = reunion
        self.target: tuple[RoomId | None, NodeId] | None = None
        """While joining: the room (None: joining by address, not known yet), and the
        authority we dial."""
        self._resync_at: float | None = None
        self._breaks = 0
        self._shown: dict[NodeId, tuple[int, int]] = {}

    def begin(self, room_id: RoomId | None, authority: NodeId) -> None:
        """Start joining ``room_id`` through ``authority`` (the shell dials it)."""
        self.target = (room_id, authority)
        self._resync_at = None
        self._breaks = 0

    def authority(self) -> NodeId | None:
        """The node this member needs a link to: the one it joins through, or the authority."""
        ctx = self._ctx
        if ctx.phase is Phase.JOINING or (ctx.phase is Phase.REJOINING and ctx.replica is None):
            return self.target[1] if self.target is not None else None
        state = ctx.state
        if state is None or ctx.is_authority or ctx.phase is Phase.LEAVING:
            return None
        return state.authority

    def link_up(self, peer: NodeId) -> None:
        """Ask to join once the link to the room's authority is up (again)."""
        ctx = self._ctx
        if peer not in (self.authority(), ctx.redirect):
            return
        room_id = self.target[0] if ctx.replica is None and self.target else None
        room_id = room_id or (ctx.replica.room_id if ctx.replica is not None else None)
        if room_id is not None:
            join = wire.Request(room_id, 0, ctx.join_action())
            ctx.send(peer, wire.seal_bytes(ctx.identity, join))

    def link_down(self, peer: NodeId, reason: str) -> None:
        """The authority's link broke: say so (the shell dials it again while we want it)."""
        ctx = self._ctx
        if ctx.phase is Phase.JOINING and self.target is not None and peer == self.target[1]:
            # On a lossy link a new connection can die before the join is through (its first
            # messages wait out SCTP's 3 s retransmission timer while the authority counts us
            # silent).  The shell dials a room it found again, within the join's timeout.
            self._breaks += 1
            if self.target[0] is not None and self._breaks < JOIN_LINK_TRIES:
                log.info("the link to the room broke while joining (%s); dialing again", reason)
                return
            self.fail(f"the link to the room broke: {reason}")
        elif ctx.phase is Phase.MEMBER and ctx.state is not None and peer == ctx.state.authority:
            ctx.emit(ErrorEvent(ErrorCode.AUTHORITY_LOST, f"lost the room's authority: {reason}"))

    def fail(self, reason: str) -> None:
        """Joining failed: back to idle, and say why."""
        ctx = self._ctx
        ctx.emit(ErrorEvent(ErrorCode.JOIN_FAILED, reason))
        if self.target is not None:
            ctx.hangup(self.target[1], "join failed", flush=False)
        self.target = None
        ctx.replica = None
        ctx.enter(Phase.IDLE)

    # --- messages ----------------------------------------------------------------------

    def on_update(
        self, peer: NodeId, envelope: wire.Signed, message: wire.Update, data: bytes, now: float
    ) -> None:
        """A signed update: verify and apply it, or ask for a snapshot if we are behind."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None or ctx.phase not in (Phase.MEMBER, Phase.REJOINING, Phase.LEAVING):
            log.debug("update while not in a room (joining): the snapshot will follow")
            return
        before = replica.state.authority
        try:
            update = replica.apply_update(envelope, message, data)
        except OutOfSync as exc:
            self.ask_resync(now, exc.reason)
            return
        if replica.state.authority != before:  # the host left and handed over
            self._hooks.authority_changed(now, before, took_over=False)
        self._hooks.applied(update.action, now, update.actor)

    def ask_resync(self, now: float, reason: str) -> None:
        """Ask the authority for a snapshot, at most once per :attr:`Timing.resync_s`."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None:
            return
        if self._resync_at is not None and now - self._resync_at < ctx.timing.resync_s:
            return
        self._resync_at = now
        log.info("out of step with the room (%s); asking for a snapshot", reason)
        ctx.send(
            replica.state.authority, wire.encode(wire.Resync(replica.room_id, replica.state.seq))
        )

    def on_snapshot(
        self, peer: NodeId, envelope: wire.Signed, message: wire.Snapshot, data: bytes, now: float
    ) -> None:
        """A signed snapshot: the first one makes us a member; a newer epoch's one replaces ours."""
        ctx = self._ctx
        old_replica = ctx.replica
        if ctx.phase is Phase.JOINING or old_replica is None:
            if self.target is None or self.target[0] is None:
                raise PeerError("snapshot while not joining a room")
            expected = self.target[0]
        else:
            expected = old_replica.room_id
        fresh = Replica.from_opened(envelope, message, expected)
        if fresh.state.authority != peer:
            raise PeerError("snapshot from a node that is not the room's authority")
        old = old_replica.state if old_replica is not None else None
        if old is not None and fresh.state.epoch < old.epoch:
            raise Refused("snapshot from an older epoch")
        if old_replica is not None:
            refusal = old_replica.branch_refusal(fresh, ctx.me)
            if refusal is not None:
                self._reunion.refuse_branch(fresh.state.authority, fresh.state.epoch, refusal)
                return
            old_replica.follow(fresh)
        newer_epoch = old is not None and fresh.state.epoch > old.epoch
        if old is not None and newer_epoch and old.authority == ctx.me:
            self._reunion.superseded(old, fresh.state)
        ctx.replica = fresh
        self._resync_at = None
        if old is None:
            self.target = None
            if ctx.phase is Phase.JOINING:
                ctx.enter(Phase.MEMBER)
            back = ctx.phase is Phase.REJOINING and fresh.state.host == ctx.me
            ctx.emit(Joined(fresh.room_id, fresh.state.title, host=False, reclaiming=back))
            self._hooks.authority_changed(now, None, took_over=False)
        elif newer_epoch:
            self._hooks.authority_changed(now, old.authority, took_over=False)
        self._hooks.applied(None, now)

    def on_heartbeat(
        self, peer: NodeId, envelope: wire.Signed, beat: wire.Heartbeat, data: bytes, now: float
    ) -> None:
        """A heartbeat: a sign of life, and a check that we hold what the authority holds."""
        ctx = self._ctx
        replica = ctx.replica
        target = self.target
        if replica is None and target is not None and target[0] is None and peer == target[1]:
            if envelope.signer == peer and ctx.phase is Phase.JOINING:
                self.target = (beat.room_id, peer)  # joined by address: now we know the room
                self.link_up(peer)
            return
        if replica is None or beat.room_id != replica.room_id:
            return
        replica.check_attestation(envelope, beat, data)  # the authority's, perhaps relayed
        if envelope.signer != peer:
            return
        replica.note_heartbeat(envelope, beat, data)
        self._compare(peer, beat)
        self._reunion.on_heartbeat(peer, beat)
        state = replica.state
        if beat.epoch < state.epoch:
            # A peer still in an older epoch: show it the takeover that began ours if we have
            # it, else tell it whom to ask.
            if ctx.claim is not None and ctx.claim_epoch == state.epoch:
                ctx.send(peer, ctx.claim)
            else:
                hint = wire.Redirect(state.room_id, state.epoch, state.authority)
                ctx.send(peer, wire.encode(hint))
        behind = beat.epoch == state.epoch and beat.seq > state.seq
        forked = beat.seq == state.seq and beat.state_hash != replica.hash()
        if peer == state.authority and not ctx.is_authority and (behind or forked):
            self.ask_resync(now, "the authority's heartbeat shows another state")

    def _compare(self, peer: NodeId, beat: wire.Heartbeat) -> None:
        """A fellow member's heartbeat names another state for the (epoch, seq) we hold: one of
        us was shown a different change by the authority.  Show it the authority's signed word
        for ours (once per seq): set beside its own, that is proof of the fork, and it shows
        us its own in turn (docs/DESIGN.md section 3, equivocation)."""
        replica = self._ctx.room()
        state = replica.state
        same_place = (beat.epoch, beat.seq) == (state.epoch, state.seq)
        if peer == state.authority or not same_place or beat.state_hash == replica.hash():
            return
        if replica.attestation is None or self._shown.get(peer) == (beat.epoch, beat.seq):
            return
        if len(self._shown) >= SHOWN_MAX:
            self._shown.pop(next(iter(self._shown)))
        self._shown[peer] = (beat.epoch, beat.seq)
        self._ctx.send(peer, replica.attestation)

    def on_redirect(self, peer: NodeId, message: wire.Redirect) -> None:
        """A peer says the room went on at a newer epoch under another authority: link to it
        (its signed snapshot, not this hint, is what we will believe)."""
        ctx = self._ctx
        state = ctx.state
        if (
            state is None
            or ctx.phase is not Phase.MEMBER
            or message.room_id != state.room_id
            or message.epoch <= state.epoch
            or message.authority == ctx.me
        ):
            return
        ctx.redirect = message.authority
        if message.authority in ctx.links:
            self.link_up(message.authority)

    def on_error(self, peer: NodeId, message: wire.Error, now: float) -> None:
        """An error from a peer: a refused join, our own eviction for flooding, or a refusal."""
        ctx = self._ctx
        joining = ctx.phase is Phase.JOINING and self.target is not None
        if joining and peer == self.authority() and message.code in (ErrorCode.REFUSED, FLOODING):
            self.fail(f"the room refused us: {message.reason}")
            return
        state = ctx.state
        if message.to is not None and message.to != ctx.me:
            if state is not None and peer == state.authority:  # for a guest we serve
                ctx.emit(GuestRefused(message.to, message.code, message.reason, message.req_id))
            return
        if message.code == FLOODING and state is not None and peer == state.authority:
            self._hooks.evicted(message.reason)
            return
        ctx.emit(ErrorEvent(message.code, message.reason, message.req_id))
