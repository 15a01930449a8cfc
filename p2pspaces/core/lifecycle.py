"""A node's life cycle in a room: one explicit state, its transitions in one table (h11's way).

Rules of the table:

* ``IDLE`` is in no room.  ``host`` goes to ``AUTHORITY``; ``join`` goes to ``JOINING``; a host
  that crashed and finds its room still live goes to ``REJOINING`` (it will reclaim the room).
* ``JOINING`` has dialed a room's authority and asked to join; the verified snapshot makes it a
  ``MEMBER``; a refusal or a lost link sends it back to ``IDLE``.
* ``MEMBER`` and ``AUTHORITY`` swap on every change of authority (takeover, hand-over, reclaim).
* An ``AUTHORITY`` that learns the room went on without it at a higher epoch (a healed
  partition), or a host dropped from its own room as silent while it was alive (a ``MEMBER``),
  is ``REJOINING`` until it is a member again; then a host reclaims (``AUTHORITY``), anyone
  else is a ``MEMBER``.
* ``LEAVING`` lasts from the leave command until the last messages are flushed; then ``IDLE``.
* ``ENDED`` holds the final state of a room that ended; from there, as from ``IDLE``, a node may
  host or join again.  Removed, blocked or dropped members go straight to ``IDLE``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from p2pspaces.core.wire import ActionKind

if TYPE_CHECKING:
    from p2pspaces.core.identity import NodeId
    from p2pspaces.core.room import RoomState
    from p2pspaces.core.wire import Action


class Phase(enum.Enum):
    """Where a node is in its room's life."""

    IDLE = "idle"
    JOINING = "joining"
    MEMBER = "member"
    AUTHORITY = "authority"
    REJOINING = "rejoining"
    LEAVING = "leaving"
    ENDED = "ended"


_IN_ROOM = frozenset({Phase.MEMBER, Phase.AUTHORITY, Phase.REJOINING})

TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.IDLE: frozenset({Phase.JOINING, Phase.AUTHORITY, Phase.REJOINING}),
    Phase.JOINING: frozenset({Phase.MEMBER, Phase.IDLE, Phase.ENDED}),
    Phase.MEMBER: frozenset(
        {Phase.AUTHORITY, Phase.REJOINING, Phase.LEAVING, Phase.IDLE, Phase.ENDED}
    ),
    Phase.AUTHORITY: frozenset({Phase.MEMBER, Phase.REJOINING, Phase.LEAVING, Phase.ENDED}),
    Phase.REJOINING: frozenset(
        {Phase.MEMBER, Phase.AUTHORITY, Phase.LEAVING, Phase.IDLE, Phase.ENDED}
    ),
    Phase.LEAVING: frozenset({Phase.IDLE, Phase.ENDED}),
    Phase.ENDED: frozenset({Phase.JOINING, Phase.AUTHORITY, Phase.REJOINING, Phase.IDLE}),
}


class BadTransition(RuntimeError):
    """Our own bug: a move the table does not allow."""


def check(old: Phase, new: Phase) -> Phase:
    """Return ``new`` if the table allows ``old -> new`` (staying put is always allowed)."""
    if new is not old and new not in TRANSITIONS[old]:
        raise BadTransition(f"{old.value} -> {new.value} is not a transition of the life cycle")
    return new


def in_room(phase: Phase) -> bool:
    """Whether a node in ``phase`` holds a room's state and takes part in it."""
    return phase in _IN_ROOM


def may_start(phase: Phase) -> bool:
    """Whether a node in ``phase`` may host or join a room."""
    return phase in (Phase.IDLE, Phase.ENDED)


class Fate(enum.Enum):
    """What a new room state means for this node (:func:`fate`)."""

    STAY = "stay"
    """Still in the room (or leaving on purpose: the leave finishes on its own)."""
    ENDED = "ended"
    """The room ended."""
    LEFT = "left"
    """Out because it left (a leave that went as a plain request)."""
    REMOVED = "removed"
    """Out: a removal it saw happen."""
    BLOCKED = "blocked"
    """Out: blocked."""
    COME_BACK = "come_back"
    """Not in the state, but not put out either (dropped as silent while alive, a snapshot
    that does not say why, or the host, whom nobody may remove): rejoin."""


def fate(state: RoomState, me: NodeId, phase: Phase, action: Action | None) -> Fate:
    """What ``state``, made by ``action`` (None: a snapshot), means for node ``me`` in
    ``phase``.  Only a removal seen happening, or a block, puts a node out; anything else that
    leaves it out of the roster brings it back."""
    if state.ended:
        return Fate.ENDED
    if me in state.members or phase in (Phase.LEAVING, Phase.REJOINING):
        return Fate.STAY  # rejoining: superseded after a partition, our join is on its way
    kind = action.kind if action is not None else None
    if kind is ActionKind.LEAVE:
        return Fate.LEFT
    if me in state.blocked:
        return Fate.BLOCKED
    return Fate.REMOVED if kind is ActionKind.REMOVE and state.host != me else Fate.COME_BACK
