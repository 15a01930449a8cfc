"""The room state, how each action changes it, and its canonical bytes and hash.

A :class:`RoomState` is immutable.  :func:`apply` returns the state after one action and assumes
the action was authorised (see :mod:`p2pspaces.core.rules`); it is deterministic, so replicas
that apply the same actions hold byte-identical states, which :func:`state_hash` compares.

The canonical encoding (:func:`encode_state`) is a msgpack array with members sorted by key;
a snapshot carries exactly these bytes and :func:`decode_state` accepts only canonical input.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from p2pspaces.core import codec, wire
from p2pspaces.core.codec import Bool, Bytes, Int, Invalid, Text
from p2pspaces.core.errors import WireError
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.wire import ActionKind, Genesis, RoomId

STATE_FORMAT = 2
"""2: a member entry carries its gateway (browser guests)."""
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
    """

    name: str
    role: Role = Role.LISTENER
    muted: bool = False
    hand: int = 0
    invited: bool = False
    gateway: NodeId | None = None


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


def apply(state: RoomState, actor: NodeId, action: wire.Action) -> RoomState:
    """Return the state after ``actor`` performs ``action`` (already authorised)."""
    target = NodeId(action.target) if action.target is not None else actor
    members = _copy(state.members)
    changes = _CHANGES[action.kind](state, members, actor, target, action)
    after: RoomState = _replaced(
        state, seq=state.seq + 1, members=MappingProxyType(members), **changes
    )
    return after


_STATE_NAMES = tuple(f.name for f in dataclasses.fields(RoomState))
_MEMBER_NAMES = tuple(f.name for f in dataclasses.fields(Member))


def _replaced(value: Any, **changes: Any) -> Any:
    """``dataclasses.replace`` for our frozen, slotted RoomState and Member (whose fields need
    no __post_init__), without its per-call introspection: a third of an update's cost beyond
    the signature check was spent there."""
    names = _STATE_NAMES if type(value) is RoomState else _MEMBER_NAMES
    copy = object.__new__(type(value))
    for name in names:
        object.__setattr__(copy, name, changes[name] if name in changes else getattr(value, name))
    return copy


_Members = dict[NodeId, Member]


def _copy(members: Mapping[NodeId, Member]) -> _Members:
    """A mutable copy: the proxy's own copy() is a C-level dict copy, some 20 times faster than
    dict(proxy), which goes through the mapping protocol key by key (40 us for 1,000 members)."""
    if isinstance(members, MappingProxyType):
        return members.copy()
    return dict(members)


def _join(state: RoomState, members: _Members, actor: NodeId, via: NodeId, a: wire.Action) -> Any:
    role = Role.HOST if actor == state.host else Role.LISTENER
    members[actor] = Member(a.text, role, gateway=via if via != actor else None)
    return {}


def _leave(state: RoomState, members: _Members, actor: NodeId, _t: NodeId, _a: wire.Action) -> Any:
    changes = _without(state, members, actor)
    if actor == state.authority:
        # The authority leaving hands over to the first co-host in one signed step, so the
        # room goes on without waiting for a takeover; with no co-host the room ends.
        successors = changes.get("cohosts", state.cohosts)
        if successors:
            changes |= {"authority": successors[0], "epoch": state.epoch + 1}
        else:
            changes["ended"] = True
    return changes


def _remove(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
    return _without(state, members, target)


def _block(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
    return _without(state, members, target) | {"blocked": state.blocked | {target}}


def _without(state: RoomState, members: _Members, node: NodeId) -> dict[str, Any]:
    if members.pop(node, None) is not None:
        for guest in state.guests_of(node):  # a gateway's guests cannot stay without it
            members.pop(guest, None)
    if node in state.cohosts:
        return {"cohosts": tuple(c for c in state.cohosts if c != node)}
    return {}


def _edit(**fields: Any) -> Any:
    """A change that sets fields of the target member."""

    def change(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
        members[target] = _replaced(members[target], **fields)
        return {}

    return change


def _raise_hand(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
    members[target] = _replaced(members[target], hand=state.seq + 1)
    return {}


def _add_cohost(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
    members[target] = _replaced(members[target], role=Role.COHOST, hand=0, invited=False)
    return {"cohosts": (*state.cohosts, target)}


def _remove_cohost(state: RoomState, members: _Members, _a: NodeId, target: NodeId, _x: Any) -> Any:
    room = state.speaker_count() < state.max_speakers
    role = Role.SPEAKER if room else Role.LISTENER
    members[target] = _replaced(members[target], role=role)
    return {"cohosts": tuple(c for c in state.cohosts if c != target)}


def _room(**fields: Any) -> Any:
    """A change to the room itself."""

    def change(state: RoomState, members: _Members, _a: NodeId, _t: NodeId, action: Any) -> Any:
        return {name: getattr(action, source) for name, source in fields.items()}

    return change


def _end(state: RoomState, members: _Members, _a: NodeId, _t: NodeId, _x: Any) -> Any:
    return {"ended": True}


_SPEAKER = {"role": Role.SPEAKER, "hand": 0, "invited": False, "muted": False}
_CHANGES = {
    ActionKind.JOIN: _join,
    ActionKind.LEAVE: _leave,
    ActionKind.RAISE_HAND: _raise_hand,
    ActionKind.LOWER_HAND: _edit(hand=0),
    ActionKind.INVITE_SPEAKER: _edit(invited=True),
    ActionKind.ACCEPT_INVITE: _edit(**_SPEAKER),
    ActionKind.DECLINE_INVITE: _edit(invited=False),
    ActionKind.ACCEPT_HAND: _edit(**_SPEAKER),
    ActionKind.MAKE_LISTENER: _edit(role=Role.LISTENER, muted=False, hand=0, invited=False),
    ActionKind.MUTE: _edit(muted=True),
    ActionKind.UNMUTE: _edit(muted=False),
    ActionKind.REMOVE: _remove,
    ActionKind.BLOCK: _block,
    ActionKind.DROP: _remove,
    ActionKind.ADD_COHOST: _add_cohost,
    ActionKind.REMOVE_COHOST: _remove_cohost,
    ActionKind.SET_TITLE: _room(title="text"),
    ActionKind.SET_RECORDING: _room(recording="flag"),
    ActionKind.END: _end,
}


REMOVALS = frozenset({ActionKind.LEAVE, ActionKind.REMOVE, ActionKind.BLOCK, ActionKind.DROP})
"""The changes that take a member out (and with it the guests it serves)."""


def changed_members(
    before: RoomState, after: RoomState, actor: NodeId, action: wire.Action
) -> set[NodeId]:
    """The members an applied change touched: the one who joins, else its target (the actor
    itself when it names none; no change edits both), and on a removal the guests that left
    with their gateway (the only change whose cost grows with the room)."""
    if action.kind is wire.ActionKind.JOIN or action.target is None:
        changed = {actor}  # a join's target is the guest's gateway, which it does not change
    else:
        changed = {NodeId(action.target)}
    if action.kind in REMOVALS:
        changed.update(before.members.keys() - after.members.keys())
    return changed


def with_authority(state: RoomState, epoch: int, authority: NodeId) -> RoomState:
    """The state once ``authority`` holds ``epoch`` (a takeover counts as one change)."""
    return dataclasses.replace(state, epoch=epoch, authority=authority, seq=state.seq + 1)


# --- canonical bytes -------------------------------------------------------------------------


def _entry(node: NodeId, m: Member) -> list[Any]:
    return [node, m.name, int(m.role), m.muted, m.hand, m.invited, m.gateway]


_MEMBERS_AT = 7
"""Where the member list sits in the canonical state array."""


def _room_fields(state: RoomState) -> list[Any]:
    """The canonical state array without its member list (which goes at ``_MEMBERS_AT``)."""
    return [
        STATE_FORMAT,
        state.room_id,
        state.host,
        state.title,
        state.epoch,
        state.seq,
        state.authority,
        list(state.cohosts),
        sorted(state.blocked),
        state.recording,
        state.ended,
        state.max_speakers,
        state.max_cohosts,
    ]


def encode_state(state: RoomState) -> bytes:
    """The canonical bytes of a state: what a snapshot carries."""
    fields = _room_fields(state)
    fields.insert(_MEMBERS_AT, [_entry(node, m) for node, m in sorted(state.members.items())])
    return codec.pack(fields)


HASH_DOMAIN = b"p2pspaces/1 state hash\x00"
BUCKETS = 256
"""Members are hashed in buckets by the first byte of their key (keys are uniform)."""


def _bucket_digest(members: Mapping[NodeId, Member], keys: Iterable[NodeId]) -> bytes:
    return wire.digest(codec.pack([_entry(k, members[k]) for k in sorted(keys)]))


_EMPTY_BUCKET = wire.digest(codec.pack([]))


class MemberDigests:
    """The members' part of the state hash, kept up to date one change at a time.

    Two levels over 256 buckets: the root is the SHA-256 of 16 group digests, each the SHA-256
    of 16 bucket digests, each the SHA-256 of the canonical entries of the members whose key
    starts with that byte.  A change touches one or two members, so a replica rehashes one or
    two small buckets, their groups and the root (about 1 KB), whatever the room's size,
    instead of the whole roster: the per-update cost no longer grows with the room.  It is a
    composition of SHA-256 over canonical, self-delimiting encodings, so two states with one
    hash are still the same state unless SHA-256 collides.
    """

    __slots__ = ("_digests", "_groups", "_keys", "_root")

    def __init__(
        self, keys: list[frozenset[NodeId]], digests: list[bytes], groups: list[bytes]
    ) -> None:
        self._keys = keys
        self._digests = digests
        self._groups = groups
        self._root: bytes | None = None

    @classmethod
    def of(cls, members: Mapping[NodeId, Member]) -> MemberDigests:
        """The digests of a whole roster."""
        grouped: list[set[NodeId]] = [set() for _ in range(BUCKETS)]
        for node in members:
            grouped[node[0]].add(node)
        keys = [frozenset(group) for group in grouped]
        digests = [_bucket_digest(members, group) if group else _EMPTY_BUCKET for group in keys]
        groups = [_group_digest(digests, group) for group in range(GROUPS)]
        return cls(keys, digests, groups)

    def updated(self, members: Mapping[NodeId, Member], changed: Iterable[NodeId]) -> MemberDigests:
        """The digests once the ``changed`` members (joined, left or edited) are as in
        ``members``; this object is left as it was."""
        keys, digests, groups = self._keys, list(self._digests), list(self._groups)
        touched = set()
        for node in set(changed):  # every key first: two changed members may share a bucket
            bucket = node[0]
            present = node in members
            if present != (node in keys[bucket]):
                if keys is self._keys:  # shared until someone joins or leaves
                    keys = list(keys)
                keys[bucket] = keys[bucket] | {node} if present else keys[bucket] - {node}
            touched.add(bucket)
        for bucket in touched:
            inside = keys[bucket]
            digests[bucket] = _bucket_digest(members, inside) if inside else _EMPTY_BUCKET
        for group in {bucket // GROUP_SIZE for bucket in touched}:
            groups[group] = _group_digest(digests, group)
        return MemberDigests(keys, digests, groups)

    def root(self) -> bytes:
        """One digest for the whole roster."""
        if self._root is None:
            self._root = wire.digest(b"".join(self._groups))
        return self._root


GROUP_SIZE = 16
GROUPS = BUCKETS // GROUP_SIZE


def _group_digest(digests: list[bytes], group: int) -> bytes:
    start = group * GROUP_SIZE
    return wire.digest(b"".join(digests[start : start + GROUP_SIZE]))


HEADER_FORMAT = 1
HEADER_MAX = 1024
"""A header's canonical bytes: 13 fixed fields, a title of at most 100 characters, two co-hosts."""


@dataclass(frozen=True, slots=True)
class StateHeader:
    """A state without its roster: what a proof of authority needs to know about the state it
    starts from (who held it, at which epoch and seq, who may succeed).  Its canonical bytes
    (:func:`header_bytes`) hash to the state hash, so a signature over that hash covers it."""

    room_id: RoomId
    host: NodeId
    title: str
    epoch: int
    seq: int
    authority: NodeId
    cohosts: tuple[NodeId, ...]
    ended: bool
    max_cohosts: int

    def authority_set(self) -> tuple[NodeId, ...]:
        """Host, then co-hosts in succession order."""
        return (self.host, *self.cohosts)


def header_bytes(state: RoomState, members: MemberDigests | None = None) -> bytes:
    """The canonical header of ``state``: its room fields, the digest of its blocked keys and
    the members' digest (``members``, if the caller keeps them up to date)."""
    digests = members if members is not None else MemberDigests.of(state.members)
    fields = _room_fields(state)  # the state's own fields, blocked keys as one digest
    fields[0] = HEADER_FORMAT
    fields[8] = wire.digest(codec.pack(fields[8]))
    fields.append(digests.root())
    return codec.pack(fields)


def header_hash(header: bytes) -> bytes:
    """The state hash of a state with this canonical header."""
    return wire.digest(HASH_DOMAIN + header)


def state_hash(state: RoomState, members: MemberDigests | None = None) -> bytes:
    """The state hash: SHA-256 of the state's canonical header (room fields, a digest of the
    blocked keys, the members' digest), ``members`` kept up to date by the caller or computed."""
    return header_hash(header_bytes(state, members))


@codec.guarded
def decode_header(data: bytes) -> StateHeader:
    """Parse a state header (hash the bytes as received: they are what was signed)."""
    if len(data) > HEADER_MAX:
        raise Invalid(f"state header of {len(data)} bytes (cap {HEADER_MAX})")
    obj = codec.unpack(data)
    if type(obj) is not list or len(obj) != 14 or obj[0] != HEADER_FORMAT:
        raise Invalid("not a state header")
    cohosts = tuple(NodeId(_KEY.parse(c)) for c in _list(obj[7]))
    header = StateHeader(
        room_id=RoomId(_KEY.parse(obj[1])),
        host=NodeId(_KEY.parse(obj[2])),
        title=Text(wire.TITLE_MAX, min_chars=1).parse(obj[3]),
        epoch=_EPOCH.parse(obj[4]),
        seq=_EPOCH.parse(obj[5]),
        authority=NodeId(_KEY.parse(obj[6])),
        cohosts=cohosts,
        ended=Bool().parse(obj[10]),
        max_cohosts=Int(0, 2).parse(obj[12]),
    )
    for index, kind in ((8, _KEY), (13, _KEY)):
        kind.parse(obj[index])
    Bool().parse(obj[9])
    Int(0, 100).parse(obj[11])
    if len(cohosts) > header.max_cohosts or len(set(cohosts)) != len(cohosts):
        raise Invalid("state header: bad co-host list")
    if header.authority not in header.authority_set():
        raise Invalid("state header: authority is neither host nor co-host")
    return header


_KEY = Bytes(32, 32)
_NAME = Text(wire.NAME_MAX, min_chars=1)
_COUNT = Int(0, wire.U63)
_EPOCH = Int(0, wire.COUNTER_MAX)
_MEMBER_FIELDS = (_KEY, _NAME, Int(0, 3), Bool(), _COUNT, Bool(), codec.Optional(_KEY))


@codec.guarded
def decode_state(data: bytes) -> RoomState:
    """Parse canonical state bytes, refusing anything malformed, inconsistent or non-canonical."""
    obj = codec.unpack(data)
    if type(obj) is not list or len(obj) != 14 or obj[0] != STATE_FORMAT:
        raise Invalid("state: not a format-2 state array")
    members: dict[NodeId, Member] = {}
    for entry in _list(obj[7]):
        if type(entry) is not list or len(entry) != len(_MEMBER_FIELDS):
            raise Invalid("state: malformed member")
        node, name, role, muted, hand, invited, gateway = (
            kind.parse(value) for kind, value in zip(_MEMBER_FIELDS, entry, strict=True)
        )
        via = NodeId(gateway) if gateway is not None else None
        members[NodeId(node)] = Member(name, Role(role), muted, hand, invited, via)
    state = RoomState(
        room_id=RoomId(_KEY.parse(obj[1])),
        host=NodeId(_KEY.parse(obj[2])),
        title=Text(wire.TITLE_MAX, min_chars=1).parse(obj[3]),
        epoch=_EPOCH.parse(obj[4]),
        seq=_EPOCH.parse(obj[5]),
        authority=NodeId(_KEY.parse(obj[6])),
        members=MappingProxyType(members),
        cohosts=tuple(NodeId(_KEY.parse(c)) for c in _list(obj[8])),
        blocked=frozenset(NodeId(_KEY.parse(b)) for b in _list(obj[9])),
        recording=Bool().parse(obj[10]),
        ended=Bool().parse(obj[11]),
        max_speakers=Int(0, 100).parse(obj[12]),
        max_cohosts=Int(0, 2).parse(obj[13]),
    )
    if encode_state(state) != data:
        raise Invalid("state: not in canonical form")
    _check_consistent(state)
    return state


def _list(value: object) -> list[Any]:
    if type(value) is not list:
        raise Invalid("state: expected a list")
    return value


def _check_consistent(state: RoomState) -> None:
    """Refuse states that no sequence of authorised actions can produce."""
    cohost_roles = {n for n, m in state.members.items() if m.role == Role.COHOST}
    if set(state.cohosts) != cohost_roles or len(set(state.cohosts)) != len(state.cohosts):
        raise Invalid("state: co-host list does not match co-host roles")
    if len(state.cohosts) > state.max_cohosts:
        raise Invalid("state: too many co-hosts")
    if state.authority not in state.authority_set():
        raise Invalid("state: authority is neither host nor co-host")
    if state.blocked & set(state.members) or state.host in state.blocked:
        raise Invalid("state: a blocked key is a member")
    for node, member in state.members.items():
        if (member.role == Role.HOST) != (node == state.host):
            raise Invalid("state: only the host holds the host role")
        if member.gateway is not None:
            served_by = state.members.get(member.gateway)
            if served_by is None or served_by.gateway is not None or member.role >= Role.COHOST:
                raise Invalid("state: a guest needs a member node as its gateway, below co-host")
