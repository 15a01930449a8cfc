"""What the parts of a :class:`~p2pspaces.core.session.RoomSession` share.

One node's identity, the replica of its room, its life-cycle phase, the peers it has links
with, and the queues of what to send and what to tell the front end.  The authority's half, the
member's half, succession and the chat relay each hold this one object; the session drives them.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from p2pspaces.core import lifecycle, wire
from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import ErrorEvent, Event, GuestRefused
from p2pspaces.core.identity import Identity, NodeId, short_fingerprint
from p2pspaces.core.ledger import Replica
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.room import RoomState
from p2pspaces.core.settings import Timing
from p2pspaces.core.wire import Action, ActionKind

log = logging.getLogger("p2pspaces.session")

OUTBOX_MAX = 100_000
"""Outputs waiting for the shell; the shell drains them after every call, so only a bug fills it."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` to ``peer`` on its control channel."""

    peer: NodeId
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``data`` to every peer linked with us (heartbeats, takeover claims)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Hangup:
    """Close the link with ``peer`` (after what was queued for it has left, if ``flush``);
    with ``penalty``, it misbehaved: keep it out for :attr:`Timing.penalty_s`."""

    peer: NodeId
    reason: str
    flush: bool = True
    penalty: bool = False


Output = Send | Broadcast | Hangup


class Hooks(Protocol):
    """What the parts ask of the session that drives them."""

    def applied(self, action: wire.Action | None, now: float, actor: NodeId | None = None) -> None:
        """A new state is in place (``actor``'s ``action`` made it, or a snapshot if None)."""

    def authority_changed(self, now: float, previous: NodeId | None, *, took_over: bool) -> None:
        """Another node (or this one) holds the room now; ``previous`` held it before."""

    def evicted(self, reason: str) -> None:
        """The authority dropped us for flooding."""

    def welcomed(self, joiner: NodeId) -> None:
        """As the authority: ``joiner`` has the room's state; give it what comes with it (the
        room's contacts, the last chat lines)."""


class SessionContext:
    """The state shared by the parts of one room session."""

    def __init__(self, identity: Identity, name: str, timing: Timing, counter: int = 0) -> None:
        self.identity = identity
        self.name = name
        self.timing = timing
        self.replica: Replica | None = None
        self.phase = Phase.IDLE
        self.links: set[NodeId] = set()
        self.claim: bytes | None = None
        """The signed takeover that began our epoch ``claim_epoch``, to show peers still behind."""
        self.claim_epoch = -1
        self.redirect: NodeId | None = None
        """A newer epoch's authority we learned of but could not follow yet: link to it."""
        self.outputs: deque[Output] = deque()
        self.events: deque[Event] = deque()
        self._counter = counter
        self.relays = True
        """Whether this node may be asked to relay the room's voices (said in its join)."""

    def join_action(self) -> Action:
        """Our join: our name, and whether we opted out of relaying."""
        return Action(ActionKind.JOIN, text=self.name, flag=not self.relays)

    def next_counter(self) -> int:
        """The next of this node's rising counter, shared by its requests, chat lines and
        reactions (what shows a relayed one is not a replay: :class:`limits.Freshness`)."""
        self._counter += 1
        return self._counter

    def epoch(self) -> int:
        """The epoch of the state we hold (0 before any): what our signed messages name."""
        return self.replica.state.epoch if self.replica is not None else 0

    @property
    def me(self) -> NodeId:
        """This node's key."""
        return self.identity.node_id

    @property
    def state(self) -> RoomState | None:
        """The room state this node holds, if any."""
        return self.replica.state if self.replica is not None else None

    @property
    def is_authority(self) -> bool:
        """Whether this node is its room's authority."""
        return (
            self.replica is not None
            and self.replica.state.authority == self.me
            and lifecycle.in_room(self.phase)
        )

    def room(self) -> Replica:
        """The replica, or :class:`CommandError` for a command given outside a room."""
        if self.replica is None or not (
            lifecycle.in_room(self.phase) or self.phase is Phase.LEAVING
        ):
            raise CommandError("not in a room")
        return self.replica

    def enter(self, phase: Phase) -> None:
        """Move to ``phase`` (the life-cycle table must allow it)."""
        self.phase = lifecycle.check(self.phase, phase)

    def send(self, peer: NodeId, data: bytes) -> bool:
        """Queue ``data`` for ``peer``; False if there is no link to it."""
        if peer not in self.links:
            return False
        self._queue(Send(peer, data))
        return True

    def send_members(self, data: bytes, *, but: NodeId | None = None) -> None:
        """Queue ``data`` for every linked member (the authority and rivals included)."""
        state = self.state
        for peer in sorted(self.links):
            if peer != but and state is not None and self._is_party(state, peer):
                self._queue(Send(peer, data))

    def send_all(self, data: bytes) -> None:
        """Queue ``data`` for every linked peer."""
        self._queue(Broadcast(data))

    def heartbeat(self) -> bytes:
        """Our signed heartbeat: the room, epoch, seq and state hash we hold."""
        replica = self.room()
        state = replica.state
        beat = wire.Heartbeat(state.room_id, state.epoch, state.seq, replica.hash())
        return wire.seal_bytes(self.identity, beat)

    def hangup(self, peer: NodeId, reason: str, *, flush: bool = True) -> None:
        """Queue the closing of ``peer``'s link."""
        if peer in self.links:
            self._queue(Hangup(peer, reason, flush))

    def penalize(self, peer: NodeId, reason: str) -> None:
        """``peer`` sent what no honest node sends: drop its link and keep it out a while."""
        if peer in self.links:
            self._queue(Hangup(peer, reason, flush=True, penalty=True))

    def refuse(
        self, actor: NodeId, code: str, reason: str, req_id: int = 0, *, via: NodeId | None = None
    ) -> None:
        """Tell ``actor`` (or our own front end) that something was refused.

        A browser guest is told through its gateway ``via`` (the link its request came on, or
        the gateway the state names): the error names the guest, and the gateway passes it on;
        if we are that gateway, the front end gets a :class:`GuestRefused`."""
        if via is None and actor != self.me:
            state = self.state
            via = state.gateway_of(actor) if state is not None else None
        if via is None or via == actor:
            if actor == self.me:
                self.emit(ErrorEvent(code, reason, req_id))
            else:
                self.send(actor, wire.encode(wire.Error(code, reason[: wire.REASON_MAX], req_id)))
        elif via == self.me:
            self.emit(GuestRefused(actor, code, reason, req_id))
        else:
            error = wire.Error(code, reason[: wire.REASON_MAX], req_id, to=actor)
            self.send(via, wire.encode(error))

    def emit(self, event: Event) -> None:
        """Queue an event for the front end."""
        self.events.append(event)

    def name_of(self, node: bytes) -> str:
        """A member's display name, else the short fingerprint of its key."""
        state = self.state
        member = state.members.get(NodeId(node)) if state is not None else None
        return member.name if member is not None else short_fingerprint(node)

    def _is_party(self, state: RoomState, peer: NodeId) -> bool:
        return peer in state.members or peer == state.authority or peer in state.authority_set()

    def _queue(self, output: Output) -> None:
        if len(self.outputs) >= OUTBOX_MAX:
            log.error("outbox full: the shell is not draining the session; dropping output")
            return
        self.outputs.append(output)
