"""A room state's canonical bytes and hash.

The canonical encoding (:func:`encode_state`) is a msgpack array with members sorted by key;
a snapshot carries exactly these bytes and :func:`decode_state` accepts only canonical input.
The hash (:func:`state_hash`) covers a header of the room's fields and the members in 256
buckets by key, so a change to one member re-hashes one bucket (:class:`MemberDigests`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from p2pspaces.core import codec, wire
from p2pspaces.core.codec import Bool, Bytes, Int, Invalid, Text
from p2pspaces.core.identity import NodeId
from p2pspaces.core.room import (
    RELAY_FANOUT,
    RELAY_HOPS,
    STATE_FORMAT,
    Member,
    Role,
    RoomState,
)
from p2pspaces.core.wire import RoomId


def _entry(node: NodeId, m: Member) -> list[Any]:
    return [node, m.name, int(m.role), m.muted, m.hand, m.invited, m.gateway, m.via, m.relays]


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


def canonical_fields(state: RoomState) -> list[Any]:
    """The canonical state array, before packing (a test kit crafts states from it)."""
    fields = _room_fields(state)
    fields.insert(_MEMBERS_AT, [_entry(node, m) for node, m in sorted(state.members.items())])
    return fields


def encode_state(state: RoomState) -> bytes:
    """The canonical bytes of a state: what a snapshot carries."""
    return codec.pack(canonical_fields(state))


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
        *_opening(obj),
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
_MEMBER_FIELDS = (
    _KEY,
    _NAME,
    Int(0, 3),
    Bool(),
    _COUNT,
    Bool(),
    codec.Optional(_KEY),
    codec.Optional(_KEY),
    Bool(),
)


def _opening(obj: list[Any]) -> tuple[RoomId, NodeId, str, int, int, NodeId]:
    """The fields a state and its header both open with (items 1 to 6): room id, host,
    title, epoch, seq, authority."""
    return (
        RoomId(_KEY.parse(obj[1])),
        NodeId(_KEY.parse(obj[2])),
        Text(wire.TITLE_MAX, min_chars=1).parse(obj[3]),
        _EPOCH.parse(obj[4]),
        _EPOCH.parse(obj[5]),
        NodeId(_KEY.parse(obj[6])),
    )


@codec.guarded
def decode_state(data: bytes) -> RoomState:
    """Parse canonical state bytes, refusing anything malformed, inconsistent or non-canonical."""
    obj = codec.unpack(data)
    if type(obj) is not list or len(obj) != 14 or obj[0] != STATE_FORMAT:
        raise Invalid(f"state: not a format-{STATE_FORMAT} state array")
    members: dict[NodeId, Member] = {}
    for entry in _list(obj[7]):
        if type(entry) is not list or len(entry) != len(_MEMBER_FIELDS):
            raise Invalid("state: malformed member")
        node, name, role, muted, hand, invited, gateway, via, relays = (
            kind.parse(value) for kind, value in zip(_MEMBER_FIELDS, entry, strict=True)
        )
        members[NodeId(node)] = Member(
            name,
            Role(role),
            muted,
            hand,
            invited,
            NodeId(gateway) if gateway is not None else None,
            NodeId(via) if via is not None else None,
            relays,
        )
    state = RoomState(
        *_opening(obj),
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
        if member.gateway is not None and member.relays:
            raise Invalid("state: a browser guest cannot relay")
    _check_relays(state)


def _check_relays(state: RoomState) -> None:
    """Refuse a relay plan no authorised change makes (see :mod:`p2pspaces.core.rules`)."""
    fanout: dict[NodeId, int] = {}
    for member in state.members.values():
        if member.via is None:
            continue
        relay = state.members.get(member.via)
        if member.role != Role.LISTENER or relay is None or relay.role != Role.LISTENER:
            raise Invalid("state: a relay and its listener must both be listeners")
        if member.gateway is not None or relay.gateway is not None or not relay.relays:
            raise Invalid("state: a relay must be a listener node that relays, for a node")
        fanout[member.via] = fanout.get(member.via, 0) + 1
        if fanout[member.via] > RELAY_FANOUT:
            raise Invalid(f"state: a relay with more than {RELAY_FANOUT} listeners")
    if any(state.hops(node) > RELAY_HOPS for node, m in state.members.items() if m.via):
        raise Invalid("state: a listener too many relays from the voices")
