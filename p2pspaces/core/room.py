"""The room state and how each action changes it (its canonical bytes and hash are in
:mod:`p2pspaces.core.statebytes`).

A :class:`RoomState` is immutable.  :func:`apply` returns the state after one action and assumes
the action was authorised (see :mod:`p2pspaces.core.rules`); it is deterministic, so replicas
that apply the same actions hold byte-identical states, which
:func:`~p2pspaces.core.statebytes.state_hash` compares.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypedDict, TypeVar

from p2pspaces.core import wire
from p2pspaces.core.errors import WireError
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.wire import ActionKind, Genesis, RoomId

STATE_FORMAT = 3
"""2: a member entry carries its gateway (browser guests).  3: and the relay it hears the room
through, and whether it may be asked to relay (issue 22)."""
RELAY_FANOUT = 8
"""The most listeners one relay forwards the room's voices to (a relay's upload and CPU)."""
RELAY_HOPS = 3
"""The most relays between a voice and a listener (each hop adds about a millisecond on a
wired LAN, see ``scripts/bench_relay.py``; more on Wi-Fi)."""
DEFAULT_MAX_SPEAKERS = 10
DEFAULT_MAX_COHOSTS = 2


class Role(enum.IntEnum):
    """A member's role; a higher value outranks a lower one."""

    LISTENER = 0
    SPEAKER = 1
    COHOST = 2
    HOST = 3


SPEAKING_ROLES = frozenset({Role.SPEAKER, Role.COHOST, Role.HOST})


@dataclass(frozen=True, slots=True)
class Member:
    """One member: name, role, and the flags the room shows for them.

    ``hand`` is 0 when the hand is down, else the seq of the change that raised it, which
    orders the hand queue.  ``gateway`` is set for a browser guest: the member node that
    serves it and relays its signed requests and its voice (named in the guest's own signed
    join; docs/DESIGN.md section 5b).  A guest leaves with its gateway.

    ``via`` is set, by the authority alone, for a listener of a large room: the listener node
    that forwards the room's voices to it (its relay; docs/design-notes.md, "Relays"); None:
    it hears each voice straight from that voice's node.  ``relays`` is False for a node that
    opted out of relaying when it joined (and for every guest).
    """

    name: str
    role: Role = Role.LISTENER
    muted: bool = False
    hand: int = 0
    invited: bool = False
    gateway: NodeId | None = None
    via: NodeId | None = None
    relays: bool = True


@dataclass(frozen=True, slots=True)
class RoomState:
    """Everything members agree on; change it only through :func:`apply`."""

    room_id: RoomId
    host: NodeId
    title: str
    epoch: int
    seq: int
    authority: NodeId
    members: Mapping[NodeId, Member]
    cohosts: tuple[NodeId, ...]
    blocked: frozenset[NodeId]
    recording: bool = False
    ended: bool = False
    max_speakers: int = DEFAULT_MAX_SPEAKERS
    max_cohosts: int = DEFAULT_MAX_COHOSTS

    def power(self, node: bytes) -> Role | None:
        """The role a node acts with: the authority acts as host; None for non-members."""
        if node == self.authority:
            return Role.HOST
        member = self.members.get(NodeId(node))
        if member is None:
            return None
        return min(member.role, Role.COHOST)

    def ended_by(self, node: NodeId) -> int:
        """How many others ``node`` leaving would end the room for: it holds the room and no
        co-host of its is in it to keep it (0: it ends nothing, or someone keeps it going)."""
        if node != self.authority or any(c in self.members for c in self.cohosts if c != node):
            return 0
        return len(self.members) - 1

    def speaker_count(self) -> int:
        """Speakers beside the host and co-hosts."""
        return sum(1 for m in self.members.values() if m.role == Role.SPEAKER)

    def hand_queue(self) -> list[NodeId]:
        """Members with a raised hand, first raised first."""
        raised = [(m.hand, node) for node, m in self.members.items() if m.hand]
        return [node for _, node in sorted(raised)]

    def may_speak(self, node: bytes) -> bool:
        """Whether audio from ``node`` is to be played: an unmuted speaker, host or co-host."""
        member = self.members.get(NodeId(node))
        return (
            not self.ended
            and member is not None
            and member.role in SPEAKING_ROLES
            and not member.muted
        )

    def authority_set(self) -> tuple[NodeId, ...]:
        """Host, then co-hosts in succession order."""
        return (self.host, *self.cohosts)

    def gateway_of(self, node: bytes) -> NodeId | None:
        """The gateway serving ``node`` if it is a browser guest, else None."""
        member = self.members.get(NodeId(node))
        return member.gateway if member is not None else None

    def guests_of(self, gateway: bytes) -> list[NodeId]:
        """The guests ``gateway`` serves (a scan of the roster: for removals only)."""
        return [node for node, m in self.members.items() if m.gateway == gateway]

    def hops(self, node: bytes) -> int:
        """How many relays ``node``'s voices pass through (0: straight from each voice)."""
        hops = 0
        member = self.members.get(NodeId(node))
        while member is not None and member.via is not None and hops <= RELAY_HOPS:
            hops += 1
            member = self.members.get(member.via)
        return hops

    def voice_links(self) -> set[NodeId]:
        """The nodes whose audio reaches the room: every node member in a speaking role, and
        the gateway of every guest in one (a guest's voice comes through its gateway)."""
        voices = set()
        for node, member in self.members.items():
            if member.role in SPEAKING_ROLES:
                voices.add(member.gateway or node)
        return voices


def genesis_record(
    host: Identity,
    host_name: str,
    title: str,
    *,
    created_ms: int,
    nonce: bytes,
    max_speakers: int = DEFAULT_MAX_SPEAKERS,
    max_cohosts: int = DEFAULT_MAX_COHOSTS,
) -> bytes:
    """Return the host's signed genesis envelope bytes (the room id is their SHA-256)."""
    record = Genesis(host.node_id, host_name, title, created_ms, nonce, max_speakers, max_cohosts)
    return wire.seal_bytes(host, record)


_ROOM_ID_DOMAIN = b"p2pspaces/1 room id\x00"


def room_id_from(host: bytes, birth: bytes) -> RoomId:
    """The id of the room whose host is ``host`` and whose signed genesis hashes to ``birth``.

    The host's key is hashed in on its own so that an mDNS advert can prove, in 64 bytes
    (``host`` and ``birth``), whose room an id is: nobody else can find a ``birth`` that gives
    the same id under their own key (:mod:`p2pspaces.net.discovery`)."""
    return RoomId(wire.digest(_ROOM_ID_DOMAIN + host + birth))


def birth_of(genesis_envelope: bytes) -> bytes:
    """The digest of a room's signed genesis, which with its host's key makes its id."""
    return wire.digest(genesis_envelope)


def initial_state(genesis_envelope: bytes) -> RoomState:
    """Verify a signed genesis envelope and return the room's first state (seq 0, epoch 0)."""
    envelope, genesis = wire.open_signed_bytes(genesis_envelope, Genesis)
    if envelope.signer != genesis.host:
        raise WireError("genesis not signed by its host")
    return RoomState(
        room_id=room_id_from(genesis.host, birth_of(genesis_envelope)),
        host=genesis.host,
        title=genesis.title,
        epoch=0,
        seq=0,
        authority=genesis.host,
        members=MappingProxyType({genesis.host: Member(genesis.host_name, Role.HOST)}),
        cohosts=(),
        blocked=frozenset(),
        max_speakers=genesis.max_speakers,
        max_cohosts=genesis.max_cohosts,
    )


# --- apply -----------------------------------------------------------------------------------


class RoomChanges(TypedDict, total=False):
    """What a change sets on the room beside its members (and ``seq``, which every change
    raises): each change function returns these, so the state machine's heart is typed."""

    title: str
    epoch: int
    authority: NodeId
    cohosts: tuple[NodeId, ...]
    blocked: frozenset[NodeId]
    recording: bool
    ended: bool


_Members = dict[NodeId, Member]


@dataclass(frozen=True, slots=True)
class Doing:
    """One action being applied: ``members`` is the new state's copy, edited in place."""

    state: RoomState
    members: _Members
    actor: NodeId
    target: NodeId
    """The action's target, or the actor for an action about oneself."""
    action: wire.Action


Change = Callable[[Doing], RoomChanges]
"""One action's effect: it edits the members' copy and returns the room's other changes."""


def apply(state: RoomState, actor: NodeId, action: wire.Action) -> RoomState:
    """Return the state after ``actor`` performs ``action`` (already authorised)."""
    target = NodeId(action.target) if action.target is not None else actor
    members = _copy(state.members)
    changes = _CHANGES[action.kind](Doing(state, members, actor, target, action))
    return _replaced(state, seq=state.seq + 1, members=MappingProxyType(members), **changes)


_STATE_NAMES = tuple(f.name for f in dataclasses.fields(RoomState))
_MEMBER_NAMES = tuple(f.name for f in dataclasses.fields(Member))
_T = TypeVar("_T", RoomState, Member)


def _replaced(value: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for our frozen, slotted RoomState and Member (whose fields need
    no __post_init__), without its per-call introspection: a third of an update's cost beyond
    the signature check was spent there."""
    names = _STATE_NAMES if type(value) is RoomState else _MEMBER_NAMES
    copy = object.__new__(type(value))
    for name in names:
        object.__setattr__(copy, name, changes[name] if name in changes else getattr(value, name))
    return copy


def _copy(members: Mapping[NodeId, Member]) -> _Members:
    """A mutable copy: the proxy's own copy() is a C-level dict copy, some 20 times faster than
    dict(proxy), which goes through the mapping protocol key by key (40 us for 1,000 members)."""
    if isinstance(members, MappingProxyType):
        return members.copy()
    return dict(members)


def _join(d: Doing) -> RoomChanges:
    role = Role.HOST if d.actor == d.state.host else Role.LISTENER
    via = d.target  # a guest's join names its gateway
    guest = via != d.actor
    relays = not guest and not d.action.flag  # a join's flag: do not ask me to relay
    d.members[d.actor] = Member(d.action.text, role, gateway=via if guest else None, relays=relays)
    return {}


def _leave(d: Doing) -> RoomChanges:
    state = d.state
    changes = _without(state, d.members, d.actor)
    if d.actor == state.authority:
        # The authority leaving hands over to the first co-host in one signed step, so the
        # room goes on without waiting for a takeover; with no co-host the room ends.
        successors = changes.get("cohosts", state.cohosts)
        if successors:
            changes |= {"authority": successors[0], "epoch": state.epoch + 1}
        else:
            changes["ended"] = True
    return changes


def _remove(d: Doing) -> RoomChanges:
    return _without(d.state, d.members, d.target)


def _block(d: Doing) -> RoomChanges:
    changes = _without(d.state, d.members, d.target)
    changes["blocked"] = d.state.blocked | {d.target}
    return changes


def _without(state: RoomState, members: _Members, node: NodeId) -> RoomChanges:
    if members.pop(node, None) is not None:
        for other, member in state.members.items():
            if member.gateway == node:  # a gateway's guests cannot stay without it
                members.pop(other, None)
            elif member.via == node and other in members:  # a relay's listeners go direct
                members[other] = _replaced(member, via=None)
    if node in state.cohosts:
        return {"cohosts": tuple(c for c in state.cohosts if c != node)}
    return {}


def _edit(**fields: Any) -> Change:
    """A change that sets fields of the target member."""

    def change(d: Doing) -> RoomChanges:
        d.members[d.target] = _replaced(d.members[d.target], **fields)
        return {}

    return change


def _on_stage(**fields: Any) -> Change:
    """A listener comes on stage: it hears (and is heard) straight from now on, and the
    listeners it relayed to go straight too (a voice links with everyone anyway)."""
    edit = _edit(via=None, **fields)

    def change(d: Doing) -> RoomChanges:
        _straighten_children(d)
        return edit(d)

    return change


def _relay(d: Doing) -> RoomChanges:
    """A listener gets a relay (or hears straight): the listeners it relayed to, if it gets
    one, hear straight from now on (so no listener is ever more than RELAY_HOPS away)."""
    if d.action.via is not None:
        _straighten_children(d)
    d.members[d.target] = _replaced(d.members[d.target], via=d.action.via)
    return {}


def _straighten_children(d: Doing) -> None:
    for other, member in d.state.members.items():
        if member.via == d.target:
            d.members[other] = _replaced(member, via=None)


def _raise_hand(d: Doing) -> RoomChanges:
    d.members[d.target] = _replaced(d.members[d.target], hand=d.state.seq + 1)
    return {}


def _add_cohost(d: Doing) -> RoomChanges:
    _on_stage(role=Role.COHOST, hand=0, invited=False)(d)
    return {"cohosts": (*d.state.cohosts, d.target)}


def _remove_cohost(d: Doing) -> RoomChanges:
    role = Role.SPEAKER if d.state.speaker_count() < d.state.max_speakers else Role.LISTENER
    d.members[d.target] = _replaced(d.members[d.target], role=role)
    return {"cohosts": tuple(c for c in d.state.cohosts if c != d.target)}


def _set_title(d: Doing) -> RoomChanges:
    return {"title": d.action.text}


def _set_recording(d: Doing) -> RoomChanges:
    return {"recording": d.action.flag}


def _end(d: Doing) -> RoomChanges:
    return {"ended": True}


_SPEAKER = {"role": Role.SPEAKER, "hand": 0, "invited": False, "muted": False}
_CHANGES: dict[ActionKind, Change] = {
    ActionKind.JOIN: _join,
    ActionKind.LEAVE: _leave,
    ActionKind.RAISE_HAND: _raise_hand,
    ActionKind.LOWER_HAND: _edit(hand=0),
    ActionKind.INVITE_SPEAKER: _edit(invited=True),
    ActionKind.ACCEPT_INVITE: _on_stage(**_SPEAKER),
    ActionKind.DECLINE_INVITE: _edit(invited=False),
    ActionKind.ACCEPT_HAND: _on_stage(**_SPEAKER),
    ActionKind.MAKE_LISTENER: _edit(role=Role.LISTENER, muted=False, hand=0, invited=False),
    ActionKind.MUTE: _edit(muted=True),
    ActionKind.UNMUTE: _edit(muted=False),
    ActionKind.REMOVE: _remove,
    ActionKind.BLOCK: _block,
    ActionKind.DROP: _remove,
    ActionKind.ADD_COHOST: _add_cohost,
    ActionKind.REMOVE_COHOST: _remove_cohost,
    ActionKind.SET_TITLE: _set_title,
    ActionKind.SET_RECORDING: _set_recording,
    ActionKind.END: _end,
    ActionKind.RELAY: _relay,
}


REMOVALS = frozenset({ActionKind.LEAVE, ActionKind.REMOVE, ActionKind.BLOCK, ActionKind.DROP})
"""The changes that take a member out (and with it the guests it serves)."""
STRAIGHTENS = REMOVALS | {
    ActionKind.ACCEPT_INVITE,
    ActionKind.ACCEPT_HAND,
    ActionKind.ADD_COHOST,
    ActionKind.RELAY,
}
"""The changes that may send a relay's listeners straight (see :func:`changed_members`)."""


def changed_members(
    before: RoomState, after: RoomState, actor: NodeId, action: wire.Action
) -> set[NodeId]:
    """The members an applied change touched: the one who joins, else its target (the actor
    itself when it names none; no change edits both), on a removal the guests that left with
    their gateway, and the listeners of a relay that left, went on stage or got a relay itself
    (the only changes whose cost grows with the room)."""
    if action.kind is wire.ActionKind.JOIN or action.target is None:
        changed = {actor}  # a join's target is the guest's gateway, which it does not change
    else:
        changed = {NodeId(action.target)}
    if action.kind in REMOVALS:
        changed.update(before.members.keys() - after.members.keys())
    if action.kind in STRAIGHTENS:  # a relay's listeners now hear straight
        relay = NodeId(action.target) if action.target is not None else actor
        changed.update(n for n, m in before.members.items() if m.via == relay)
    return changed


def with_authority(state: RoomState, epoch: int, authority: NodeId) -> RoomState:
    """The state once ``authority`` holds ``epoch`` (a takeover counts as one change)."""
    return dataclasses.replace(state, epoch=epoch, authority=authority, seq=state.seq + 1)
