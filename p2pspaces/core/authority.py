"""The authority's half of a room session: requests in, signed updates out.

A member's signed request is checked against the per-member rate limit, then the pure rules
(``Replica.issue`` authorises, applies and signs); the update goes to every member linked to us
(the ones an update removes included, so they learn it), a joiner gets the snapshot instead.  A
member whose link breaks keeps its place for :attr:`Timing.grace_s` (a Wi-Fi hiccup must not
cost a speaker the stage); a peer that links but never joins is hung up after
:attr:`Timing.pending_join_s`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from p2pspaces.core import lifecycle, wire
from p2pspaces.core.contacts import ContactBook
from p2pspaces.core.context import Hooks, SessionContext
from p2pspaces.core.errors import ErrorCode, PeerError, Refused
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.limits import BucketsByKey, Freshness
from p2pspaces.core.relays import CHANGES_PER_REVIEW, RelayPlanner
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import Action, ActionKind

log = logging.getLogger("p2pspaces.session")

REQUEST_RATE = 2.0
REQUEST_BURST = 10.0
"""Requests a member may make: a burst of ten, then two a second (each costs every member an
update).  Joins count too: a join by a member already in the room costs a snapshot."""
RESYNC_RATE = 1.0
RESYNC_BURST = 3.0
PENDING_MAX = 1024
"""Linked peers that have not joined yet; the oldest is hung up beyond this."""

_REMOVES_TARGET = frozenset({ActionKind.REMOVE, ActionKind.BLOCK, ActionKind.DROP})


def relayed_by(state: RoomState, signer: NodeId, action: Action | None, peer: NodeId) -> bool:
    """Whether ``peer`` may pass on ``signer``'s signed message: ``signer`` is a browser guest
    that ``peer`` serves (or, for a join, names ``peer`` as its gateway)."""
    gateway = state.gateway_of(signer)
    if gateway is None and action is not None and action.kind is ActionKind.JOIN:
        return action.target == peer and signer not in state.members
    return gateway == peer


class AuthorityRole:
    """What a node does while it is its room's authority."""

    def __init__(self, ctx: SessionContext, hooks: Hooks, contacts: ContactBook) -> None:
        self._ctx = ctx
        self._hooks = hooks
        self._contacts = contacts
        self._requests = BucketsByKey(REQUEST_RATE, REQUEST_BURST)
        self._resyncs = BucketsByKey(RESYNC_RATE, RESYNC_BURST)
        self.freshness = Freshness()
        """The newest counter of each guest whose messages a gateway passes on (this epoch)."""
        self.grace: dict[NodeId, float] = {}
        """Members whose link broke, and when they are dropped unless back."""
        self.pending: dict[NodeId, float] = {}
        """Linked peers that are not members yet, and when they are hung up."""
        self.relays = RelayPlanner()
        """Which listeners hear the room through which relay (see :mod:`.relays`)."""
        self.voices_heard: Callable[[], bool] = lambda: True
        """Whether a voice of the room reaches us now (the shell knows): a listener that
        hears nothing through its relay is moved only if the voices are heard here."""
        self.fitness: Callable[[NodeId], float] = lambda peer: 0.0
        """How late a peer's messages reach us, on average (lower is fitter to relay)."""
        self.lively: Callable[[NodeId], bool] = lambda peer: True
        """Whether a linked peer was heard from lately (the shell knows; see
        :data:`~p2pspaces.core.relays.RELAY_QUIET_HEARTBEATS`): a relay that went quiet
        has its listeners moved before its link times out."""

    # --- requests ----------------------------------------------------------------------

    def on_request(
        self, peer: NodeId, envelope: wire.Signed, request: wire.Request, data: bytes, now: float
    ) -> None:
        """A member's signed request arrived on its own link, or a browser guest's through
        its gateway: a guest's join names the gateway it came through, and a guest's other
        requests are taken only from the gateway the state names for it."""
        signer = NodeId(envelope.signer)
        via: NodeId | None = None
        if signer != peer:
            if not relayed_by(self._ctx.room().state, signer, request.action, peer):
                raise PeerError("request signed by someone other than the link's peer")
            via = peer
        if not self._ctx.is_authority:
            if lifecycle.in_room(self._ctx.phase):
                raise PeerError("request sent to a node that is not the authority")
            return  # a leave that crossed our own end or departure
        if via is not None:
            stale = self.stale(signer, via, request.epoch, request.req_id)
            if stale is not None:
                self._ctx.refuse(signer, "stale", stale, request.req_id, via=via)
                return
        if not self._requests.take(signer, now):
            reason = (
                f"too fast: at most {REQUEST_BURST:.0f} requests at once, "
                f"then {REQUEST_RATE:.0f} a second"
            )
            self._ctx.refuse(signer, ErrorCode.RATE_LIMITED, reason, request.req_id, via=via)
            return
        self.handle(signer, request, now, via=via)

    def stale(self, signer: NodeId, relay: NodeId, epoch: int, counter: int) -> str | None:
        """Why a message ``relay`` passed on for ``signer`` is refused as not new, or None
        (see :class:`Freshness`); logged, since an honest gateway never replays."""
        current = self._ctx.room().state.epoch
        reason: str | None
        if epoch != current:
            reason = f"signed in epoch {epoch}, and the room is in epoch {current}; try again"
        else:
            reason = self.freshness.admit(epoch, signer, relay, counter)
        if reason is not None:
            log.warning(
                "refused a message from %s passed on by %s: %s",
                short_fingerprint(signer),
                short_fingerprint(relay),
                reason,
            )
        return reason

    def handle(
        self, actor: NodeId, request: wire.Request, now: float, *, via: NodeId | None = None
    ) -> None:
        """Carry out ``actor``'s request (our own included); refusals go back to the actor
        (through ``via``, the gateway, for a browser guest)."""
        replica = self._ctx.room()
        if request.room_id != replica.room_id:
            self._ctx.refuse(actor, ErrorCode.WRONG_ROOM, "not this room", request.req_id, via=via)
            return
        kind = request.action.kind
        if kind is ActionKind.JOIN and actor in replica.state.members:
            if via is None:
                self.pending.pop(actor, None)
                self.send_snapshot(actor)  # a member reconnecting: give it the current state
                self._hooks.welcomed(actor)
            elif replica.state.gateway_of(actor) != via:
                self._ctx.refuse(
                    actor, ErrorCode.REFUSED, "already in the room through another node", via=via
                )
            return  # a guest's page reloaded: its gateway holds the state already
        try:
            self.issue(actor, request.action, now)
        except Refused as exc:
            self._ctx.refuse(actor, ErrorCode.REFUSED, exc.reason, request.req_id, via=via)
            if kind is ActionKind.JOIN and via is None:
                self._ctx.hangup(actor, f"join refused: {exc.reason}")

    def issue(self, actor: NodeId, action: Action, now: float) -> None:
        """Authorise, apply, sign and send one change (raises :class:`Refused`)."""
        ctx = self._ctx
        replica = ctx.room()
        before = replica.state
        relay = self._silent_relay(actor, action, before)
        update = replica.issue(ctx.identity, actor, action)
        after = replica.state
        told = set(before.members) | set(after.members) | set(before.authority_set())
        if action.kind is ActionKind.JOIN and action.target is None:
            self.pending.pop(actor, None)
            self.send_snapshot(actor)
            self._hooks.welcomed(actor)
            told.discard(actor)
        for peer in sorted(told & ctx.links):
            ctx.send(peer, update)
        for gone in self._removed(actor, action):
            if gone not in after.members and gone != after.authority:
                ctx.hangup(gone, "no longer a member")
                self.grace.pop(gone, None)
        if action.kind is not ActionKind.RELAY:
            self.relays.changed(now)
        elif relay is not None:
            self.relays.bench(relay, now, actor)
            self.relays.changed(now)
        self._hooks.applied(action, now, actor)

    def _silent_relay(self, actor: NodeId, action: Action, state: RoomState) -> NodeId | None:
        """A listener asks to hear straight, its relay passing nothing on: the relay, if the
        voices are heard here (else it is the voices that are silent: refused)."""
        if action.kind is not ActionKind.RELAY or (action.target or actor) != actor:
            return None
        member = state.members.get(actor)
        if member is None or member.via is None:
            return None  # the rules refuse it
        if not self.voices_heard():
            raise Refused("the speakers are silent here too; it is not your relay")
        return member.via

    def try_issue(self, action: Action, now: float) -> None:
        """Issue our own action if the rules allow it now (used for housekeeping)."""
        with contextlib.suppress(Refused):
            self.issue(self._ctx.me, action, now)

    def send_snapshot(self, peer: NodeId) -> None:
        """Send ``peer`` the signed snapshot of the current state."""
        replica = self._ctx.room()
        self._ctx.send(peer, replica.snapshot(self._ctx.identity))
        # Our heartbeat attests the state just sent: a co-host's claim to succeed us starts
        # from an attested state (core/custody.py).
        self._ctx.send(peer, self._ctx.heartbeat())

    def on_resync(self, peer: NodeId, now: float) -> None:
        """A member is out of step and asks for the state."""
        if not self._ctx.is_authority:
            raise PeerError("resync sent to a node that is not the authority")
        if self._resyncs.take(peer, now):
            self.send_snapshot(peer)

    @staticmethod
    def _removed(actor: NodeId, action: Action) -> tuple[NodeId, ...]:
        if action.kind is ActionKind.LEAVE:
            return (actor,)
        if action.kind in _REMOVES_TARGET and action.target is not None:
            return (action.target,)
        return ()

    # --- links -------------------------------------------------------------------------

    def link_up(self, peer: NodeId, now: float) -> None:
        """A peer linked to us: a member is back in time; anyone else must join soon."""
        self.grace.pop(peer, None)
        state = self._ctx.room().state
        if peer in state.members or peer in state.authority_set():
            return
        if len(self.pending) >= PENDING_MAX:
            oldest = min(self.pending, key=self.pending.__getitem__)
            self.pending.pop(oldest)
            self._ctx.hangup(oldest, "too many peers waiting to join", flush=False)
        self.pending[peer] = now + self._ctx.timing.pending_join_s
        # Tell it which room we hold: one that dialed our address may not know (no mDNS).
        self._ctx.send(peer, self._ctx.heartbeat())

    def link_down(self, peer: NodeId, now: float, *, misbehaved: bool) -> None:
        """A member's link broke: drop it at once if it flooded us, else after the grace."""
        self.pending.pop(peer, None)
        if peer not in self._ctx.room().state.members:
            return
        self.relays.changed(now, at_once=True)  # if it relayed, its listeners need another
        if misbehaved:
            self.try_issue(Action(ActionKind.DROP, peer), now)
        else:
            self.grace[peer] = now + self._ctx.timing.grace_s

    def next_timer(self) -> float | None:
        """When a grace period or a joining wait runs out next."""
        deadlines = [*self.grace.values(), *self.pending.values()]
        if self.relays.due is not None:
            deadlines.append(self.relays.due)
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        """Drop members that did not come back; hang up peers that never joined; look over
        the relays."""
        if self.relays.due is not None and self.relays.due <= now:
            links, lively = self._ctx.links, self.lively
            state = self._ctx.room().state
            changes = self.relays.review(
                state, lambda n: n in links and lively(n), now, self.fitness
            )
            for action in changes:
                self.try_issue(action, now)
            if len(changes) >= CHANGES_PER_REVIEW:
                self.relays.changed(now)
            elif self.relays.relaying:  # watch the relays for one going quiet
                self.relays.due = now + self._ctx.timing.heartbeat_s
        for peer, when in list(self.grace.items()):
            if when <= now:
                del self.grace[peer]
                state = self._ctx.room().state
                if peer in state.members and peer not in self._ctx.links:
                    self.try_issue(Action(ActionKind.DROP, peer), now)
        for peer, when in list(self.pending.items()):
            if when <= now:
                del self.pending[peer]
                if peer not in self._ctx.room().state.members:
                    self._ctx.hangup(peer, "did not join in time")

    def reset(self) -> None:
        """Forget the timers of the last room or term."""
        self.grace.clear()
        self.pending.clear()
        self.relays.due = None
