"""Whom a node links with: which links it admits, which it wants, and which it dials itself.

The control plane is a star around the room's authority; the audio plane links every voice
(and the authority) with every member; listeners need no links to each other (docs/DESIGN.md
section 4).  Members dial their authority; a listener dials the voices it hears (so that a
voice short of CPU can refuse it, and it is told: see :mod:`p2pspaces.node.load`); between two
voices the smaller key dials, so that two nodes never both do.

In a large room (see :mod:`p2pspaces.core.relays`) a relayed listener links with its relay
(and dials it) instead of the voices, a relay links with its listeners, and a voice other than
the authority links only with those who hear it straight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pspaces.core import lifecycle
from p2pspaces.core.context import SessionContext
from p2pspaces.core.identity import NodeId
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.member import MemberRole
from p2pspaces.core.room import RoomState

BLOCKED = "blocked from this room"
"""The reason a blocked key's link is refused with (and how a member learns it was blocked)."""
NOT_A_MEMBER = "not a member of this room"
"""A member's refusal of a link from a node it does not know to be a member (yet: a joiner can
dial before the change that admitted it reaches everyone; it dials again)."""


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """The relays of one state, read by the links and the audio path."""

    via: dict[NodeId, NodeId] = field(default_factory=dict)
    """Each relayed listener's relay."""
    children: dict[NodeId, tuple[NodeId, ...]] = field(default_factory=dict)
    """Each relay's listeners."""

    @classmethod
    def of(cls, state: RoomState) -> RelayPlan:
        via = {n: m.via for n, m in state.members.items() if m.via is not None}
        children: dict[NodeId, list[NodeId]] = {}
        for child, parent in via.items():
            children.setdefault(parent, []).append(child)
        return cls(via, {p: tuple(c) for p, c in children.items()})


NO_RELAYS = RelayPlan()


class Linking:
    """One session's answers about links (read by the shell's link keeper)."""

    def __init__(self, ctx: SessionContext, member: MemberRole) -> None:
        self._ctx = ctx
        self._member = member
        self._voices: tuple[RoomState | None, frozenset[NodeId]] = (None, frozenset())
        self._gateways: tuple[RoomState | None, frozenset[NodeId]] = (None, frozenset())
        self._plan: tuple[RoomState | None, RelayPlan] = (None, NO_RELAYS)

    def admit(self, peer: NodeId) -> str | None:
        """A reason to refuse a peer's incoming link, or None: anyone not blocked may reach
        the authority (to join); a member accepts only fellow members."""
        ctx = self._ctx
        state = ctx.state
        if state is None or not lifecycle.in_room(ctx.phase):
            return "not in a room"
        if peer in state.blocked:
            return BLOCKED
        if not ctx.is_authority and peer not in state.members and peer != state.host:
            return NOT_A_MEMBER
        return None

    def wanted(self) -> frozenset[NodeId]:
        """The peers this node should hold links with now."""
        ctx = self._ctx
        authority = self._member.authority()
        if ctx.phase is Phase.JOINING or (ctx.phase is Phase.REJOINING and ctx.replica is None):
            return frozenset({authority} if authority is not None else ())
        state = ctx.state
        if state is None or not lifecycle.in_room(ctx.phase):
            return frozenset()
        voices = set(self.voices())  # a guest's voice comes from its gateway
        plan = self.plan()
        if ctx.me == state.authority:
            wanted = {n for n, m in state.members.items() if m.gateway is None}
        elif ctx.me in voices:
            wanted = {n for n, m in state.members.items() if m.gateway is None and m.via is None}
        else:
            parent = plan.via.get(ctx.me)
            wanted = voices if parent is None else {parent}
            wanted.update(plan.children.get(ctx.me, ()))
        wanted.add(state.authority)
        if ctx.redirect is not None:
            wanted.add(ctx.redirect)
        return frozenset(wanted - {ctx.me})

    def should_dial(self, peer: NodeId) -> bool:
        """Whether this node dials ``peer`` itself (see the module's docstring)."""
        ctx = self._ctx
        if peer in (self._member.authority(), ctx.redirect):
            return True
        state = ctx.state
        if state is None or ctx.me == state.authority:
            return False  # members dial the authority, never the other way round
        if peer == state.authority:
            return False
        plan = self.plan()
        if plan.via.get(ctx.me) == peer or plan.via.get(peer) == ctx.me:
            return plan.via.get(ctx.me) == peer  # a listener dials its relay
        voices = self.voices()
        if (ctx.me in voices) != (peer in voices):
            return peer in voices
        return ctx.me < peer

    def voices(self) -> frozenset[NodeId]:
        """The room's voice links now (see :meth:`RoomState.voice_links`), worked out once per
        state."""
        state = self._ctx.state
        if state is None:
            return frozenset()
        if self._voices[0] is not state:
            self._voices = (state, frozenset(state.voice_links()))
        return self._voices[1]

    def plan(self) -> RelayPlan:
        """The relays of the state now, worked out once per state."""
        state = self._ctx.state
        if state is None:
            return NO_RELAYS
        if self._plan[0] is not state:
            self._plan = (state, RelayPlan.of(state) if self._has_relays(state) else NO_RELAYS)
        return self._plan[1]

    @staticmethod
    def _has_relays(state: RoomState) -> bool:
        return any(m.via is not None for m in state.members.values())

    def gateways(self) -> frozenset[NodeId]:
        """The member nodes that serve browser guests, worked out once per state."""
        state = self._ctx.state
        if state is None:
            return frozenset()
        if self._gateways[0] is not state:
            served = {m.gateway for m in state.members.values() if m.gateway is not None}
            self._gateways = (state, frozenset(served))
        return self._gateways[1]

    def wants_rival(self, room_id: bytes, peer: NodeId) -> bool:
        """Another node advertises our room while we hold it (a partition healed): link to
        it, so that heartbeats show which branch has the higher epoch."""
        ctx = self._ctx
        state = ctx.state
        in_room = ctx.is_authority and lifecycle.in_room(ctx.phase)
        return in_room and state is not None and state.room_id == room_id and peer != ctx.me
