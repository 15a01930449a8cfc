"""Who may do what to whom: one table, and :func:`authorize` that reads it.

Rules of the table (docs/DESIGN.md section 3):

* Roles rank host > co-host > speaker > listener.  The authority (the host, or the co-host that
  took over) acts with the host's powers; nobody else does.
* An action is either about oneself (no target, or the actor as target) or about another member.
  Each (action, form) pair that is allowed has one row; a pair with no row is refused.
* Acting on another member needs a strictly higher role than theirs: a co-host cannot act on the
  host or on another co-host, nobody acts on a higher role.
* Host and co-hosts ("moderators") invite to speak, accept raised hands, move speakers back to
  listeners, mute speakers, remove and block.  Only the host adds or removes co-hosts, edits the
  title, turns recording on or off and ends the room.  A muted speaker may unmute themself; no
  one else may unmute them.
* Nothing is allowed after ``end``; a blocked key can do nothing, joining included.
* Limits: ``max_cohosts`` co-hosts, ``max_speakers`` speakers beside the host and co-hosts.
* Only the authority sets a listener's relay (``via``): a listener node in the room that did
  not opt out, never the listener itself, at most :data:`RELAY_HOPS` relays from the voices,
  at most :data:`RELAY_FANOUT` listeners each.  A relayed listener may ask to hear straight
  (its relay passes nothing on: see :mod:`p2pspaces.core.relays`).
  No other action names a relay.
* A browser guest joins naming its gateway as the join's target: a member node, not a guest.
  A guest may speak when invited but never be a co-host; its gateway may drop it (the guest's
  page went away), and no other guest of it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from p2pspaces.core import wire
from p2pspaces.core.errors import Refused
from p2pspaces.core.identity import NodeId
from p2pspaces.core.room import RELAY_FANOUT, RELAY_HOPS, SPEAKING_ROLES, Role, RoomState
from p2pspaces.core.wire import ActionKind


class Actor(enum.Enum):
    """Who may perform a row's action."""

    NON_MEMBER = "someone not in the room"
    MEMBER = "a member"
    MODERATOR = "the host or a co-host"
    HOST = "the host"
    AUTHORITY = "the room's authority"
    KEEPER = "the room's authority or the guest's gateway"


class Form(enum.Enum):
    """Whether an action is about the actor or about another member."""

    SELF = "self"
    OTHER = "other"


Check = Callable[[RoomState, NodeId, wire.Action], "str | None"]
"""A precondition: returns the reason for refusal, or None."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: who may act, on whom (by role), and what must hold."""

    actor: Actor
    roles: frozenset[Role] = frozenset(Role)
    """The roles the actor (SELF) or the target (OTHER) must hold."""
    target_member: bool = True
    checks: tuple[Check, ...] = ()


def _target(state: RoomState, actor: NodeId, action: wire.Action) -> NodeId:
    return NodeId(action.target) if action.target is not None else actor


def _hand_up(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    member = state.members[_target(state, actor, action)]
    return None if member.hand else "hand is not raised"


def _hand_down(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return "hand is already raised" if state.members[actor].hand else None


def _invited(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return None if state.members[actor].invited else "not invited to speak"


def _not_invited(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    member = state.members[_target(state, actor, action)]
    return "already invited to speak" if member.invited else None


def _speaker_room(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    if state.speaker_count() >= state.max_speakers:
        return f"the room already has {state.max_speakers} speakers"
    return None


def _cohost_room(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    if len(state.cohosts) >= state.max_cohosts:
        return f"the room already has {state.max_cohosts} co-hosts"
    return None


def _muted(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return None if state.members[_target(state, actor, action)].muted else "not muted"


def _unmuted(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return "already muted" if state.members[_target(state, actor, action)].muted else None


def _name(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    text = action.text
    if not wire.visible(text):
        return "a name needs a visible character"
    if len(text) > wire.NAME_MAX:
        return f"a name has at most {wire.NAME_MAX} characters"
    return None


def _title(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return None if wire.visible(action.text) else "a title needs a visible character"


def _not_host(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return "the host cannot be blocked" if action.target == state.host else None


def _not_blocked_yet(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return "already blocked" if action.target in state.blocked else None


def _gateway(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    served_by = state.members.get(NodeId(action.target or b""))
    if served_by is None:
        return "the gateway is not a member"
    return "a guest cannot be a gateway" if served_by.gateway is not None else None


def _not_guest(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return "a browser guest cannot be a co-host" if state.gateway_of(action.target or b"") else None


def _relay_changes(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    target = _target(state, actor, action)
    return "that relay is already so" if action.via == state.members[target].via else None


def _straight(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return None if action.via is None else "a listener may only ask to hear straight"


def _relay_node(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    via = action.via
    if via is None:
        return None
    relay = state.members.get(via)
    if relay is None or via == _target(state, actor, action):
        return "the relay is not another member"
    if relay.role != Role.LISTENER or relay.gateway is not None or not relay.relays:
        return "the relay must be a listener node that relays"
    return None


def _relay_room(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    via = action.via
    if via is None:
        return None
    target = _target(state, actor, action)
    hops, upper = 0, state.members[via].via
    while upper is not None:
        hops += 1
        above = state.members.get(upper)
        if upper == target or hops >= RELAY_HOPS or above is None:
            return "the relay is too far from the voices"
        upper = above.via
    if sum(1 for m in state.members.values() if m.via == via) >= RELAY_FANOUT:
        return f"the relay already serves {RELAY_FANOUT} listeners"
    return None


def _recording_changes(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    return None if action.flag != state.recording else "recording is already so"


_LISTENER = frozenset({Role.LISTENER})
_SPEAKER = frozenset({Role.SPEAKER})
_SPEAKING = SPEAKING_ROLES
_BELOW_HOST = frozenset({Role.LISTENER, Role.SPEAKER, Role.COHOST})

RULES: dict[tuple[ActionKind, Form], Rule] = {
    (ActionKind.JOIN, Form.SELF): Rule(Actor.NON_MEMBER, checks=(_name,)),
    (ActionKind.JOIN, Form.OTHER): Rule(Actor.NON_MEMBER, checks=(_name, _gateway)),
    (ActionKind.LEAVE, Form.SELF): Rule(Actor.MEMBER),
    (ActionKind.RAISE_HAND, Form.SELF): Rule(Actor.MEMBER, _LISTENER, checks=(_hand_down,)),
    (ActionKind.LOWER_HAND, Form.SELF): Rule(Actor.MEMBER, checks=(_hand_up,)),
    (ActionKind.LOWER_HAND, Form.OTHER): Rule(Actor.MODERATOR, _LISTENER, checks=(_hand_up,)),
    (ActionKind.INVITE_SPEAKER, Form.OTHER): Rule(
        Actor.MODERATOR, _LISTENER, checks=(_not_invited, _speaker_room)
    ),
    (ActionKind.ACCEPT_INVITE, Form.SELF): Rule(
        Actor.MEMBER, _LISTENER, checks=(_invited, _speaker_room)
    ),
    (ActionKind.DECLINE_INVITE, Form.SELF): Rule(Actor.MEMBER, _LISTENER, checks=(_invited,)),
    (ActionKind.ACCEPT_HAND, Form.OTHER): Rule(
        Actor.MODERATOR, _LISTENER, checks=(_hand_up, _speaker_room)
    ),
    (ActionKind.MAKE_LISTENER, Form.SELF): Rule(Actor.MEMBER, _SPEAKER),
    (ActionKind.MAKE_LISTENER, Form.OTHER): Rule(Actor.MODERATOR, _SPEAKER),
    (ActionKind.MUTE, Form.SELF): Rule(Actor.MEMBER, _SPEAKING, checks=(_unmuted,)),
    (ActionKind.MUTE, Form.OTHER): Rule(Actor.MODERATOR, _SPEAKING, checks=(_unmuted,)),
    (ActionKind.UNMUTE, Form.SELF): Rule(Actor.MEMBER, _SPEAKING, checks=(_muted,)),
    (ActionKind.REMOVE, Form.OTHER): Rule(Actor.MODERATOR),
    (ActionKind.BLOCK, Form.OTHER): Rule(
        Actor.MODERATOR, target_member=False, checks=(_not_host, _not_blocked_yet)
    ),
    (ActionKind.DROP, Form.OTHER): Rule(Actor.KEEPER),
    (ActionKind.ADD_COHOST, Form.OTHER): Rule(
        Actor.HOST, frozenset({Role.LISTENER, Role.SPEAKER}), checks=(_not_guest, _cohost_room)
    ),
    (ActionKind.REMOVE_COHOST, Form.OTHER): Rule(Actor.HOST, frozenset({Role.COHOST})),
    (ActionKind.REMOVE_COHOST, Form.SELF): Rule(Actor.MEMBER, frozenset({Role.COHOST})),
    (ActionKind.SET_TITLE, Form.SELF): Rule(Actor.HOST, checks=(_title,)),
    (ActionKind.SET_RECORDING, Form.SELF): Rule(Actor.HOST, checks=(_recording_changes,)),
    (ActionKind.END, Form.SELF): Rule(Actor.HOST),
    (ActionKind.RELAY, Form.SELF): Rule(
        Actor.MEMBER, _LISTENER, checks=(_straight, _relay_changes)
    ),
    (ActionKind.RELAY, Form.OTHER): Rule(
        Actor.AUTHORITY, _LISTENER, checks=(_not_guest, _relay_changes, _relay_node, _relay_room)
    ),
}


def form_of(actor: NodeId, action: wire.Action) -> Form:
    """SELF when the action has no target or targets the actor."""
    return Form.SELF if action.target is None or action.target == actor else Form.OTHER


def authorize(state: RoomState, actor: NodeId, action: wire.Action) -> None:
    """Raise :class:`Refused` with the reason unless ``actor`` may perform ``action`` now."""
    reason = refusal(state, actor, action)
    if reason is not None:
        raise Refused(reason)


def refusal(state: RoomState, actor: NodeId, action: wire.Action) -> str | None:
    """The reason ``actor`` may not perform ``action`` now, or None if they may."""
    if state.ended:
        return "the room has ended"
    if actor in state.blocked:
        return "blocked from this room"
    if action.via is not None and action.kind is not ActionKind.RELAY:
        return f"{action.kind.value} names no relay"
    form = form_of(actor, action)
    rule = RULES.get((action.kind, form))
    if rule is None:
        about = "oneself" if form is Form.SELF else "another member"
        return f"{action.kind.value} cannot be done to {about}"
    target = NodeId(action.target or b"")
    if rule.actor is Actor.NON_MEMBER:  # a join: its target is the gateway, checked below
        reason = "already a member" if state.power(actor) is not None else None
    elif rule.actor is Actor.KEEPER and state.gateway_of(target) == actor:
        reason = None  # a gateway drops its own guest: no rank needed
    else:
        reason = _actor_refusal(state, actor, rule, form)
        if reason is None and form is Form.OTHER:
            reason = _target_refusal(state, actor, rule, target)
    for check in rule.checks:
        if reason is not None:
            break
        reason = check(state, actor, action)
    return reason


def _actor_refusal(state: RoomState, actor: NodeId, rule: Rule, form: Form) -> str | None:
    power = state.power(actor)
    if power is None:
        return "not a member of the room"
    allowed = {
        Actor.MEMBER: True,
        Actor.MODERATOR: power >= Role.COHOST,
        Actor.HOST: power == Role.HOST,
        Actor.AUTHORITY: actor == state.authority,
        Actor.KEEPER: actor == state.authority,
    }[rule.actor]
    if not allowed:
        return f"only {rule.actor.value} may do this"
    if form is Form.SELF and state.members[actor].role not in rule.roles:
        return f"not allowed for a {state.members[actor].role.name.lower()}"
    return None


def _target_refusal(state: RoomState, actor: NodeId, rule: Rule, target: NodeId) -> str | None:
    member = state.members.get(target)
    if member is None:
        return "the target is not a member" if rule.target_member else None
    if member.role not in rule.roles:
        return f"cannot be done to a {member.role.name.lower()}"
    actor_power = state.power(actor)
    target_power = state.power(target)
    if actor_power is None or target_power is None or target_power >= actor_power:
        return "cannot act on an equal or higher role"
    return None
