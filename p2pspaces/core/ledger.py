"""Signed updates and snapshots: one replica of a room's history.

A :class:`Replica` holds the state a node believes, the host's signed genesis, and the hash of
the current state.  The authority calls :meth:`Replica.issue` to authorise, apply and sign a
change; members call :meth:`Replica.receive` with the signed bytes, which checks, in order,
the signer (must be this epoch's authority), the signature over the exact received bytes, the
room, the epoch, the seq, the hash chain, and the rules, and only then applies the change.  Any
failure raises and leaves the replica exactly as it was.

Pure: no I/O, no clock.  Deterministic: replicas fed the same updates hold identical states.
"""

from __future__ import annotations

from collections import OrderedDict

from p2pspaces.core import room, rules, succession, wire
from p2pspaces.core.errors import Equivocation, OutOfSync, Refused, WireError
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import RoomId, Snapshot, Update

_REMEMBERED = 256
"""How many recent updates a replica keeps to recognise replays and equivocation."""


class Replica:
    """A room's state as one node holds it, with the proofs needed to extend or share it."""

    def __init__(self, state: RoomState, genesis: bytes) -> None:
        self.state = state
        self.genesis = genesis
        self._hash: bytes | None = None
        self._members: room.MemberDigests | None = None
        self._recent: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    @classmethod
    def from_genesis(cls, genesis: bytes) -> Replica:
        """A new room's replica, from the host's signed genesis envelope."""
        return cls(room.initial_state(genesis), genesis)

    @classmethod
    def from_snapshot(cls, data: bytes, room_id: RoomId | None = None) -> Replica:
        """Verify a signed snapshot (of ``room_id``, if given) and return its replica."""
        state, genesis = _verify_snapshot(data)
        if room_id is not None and state.room_id != room_id:
            raise Refused("snapshot of another room")
        return cls(state, genesis)

    @property
    def room_id(self) -> RoomId:
        """The room's id."""
        return self.state.room_id

    def hash(self) -> bytes:
        """The current state hash (computed once per state)."""
        if self._hash is None:
            if self._members is None:
                self._members = room.MemberDigests.of(self.state.members)
            self._hash = room.state_hash(self.state, self._members)
        return self._hash

    def issue(self, authority: Identity, actor: NodeId, action: wire.Action) -> bytes:
        """As the authority: authorise and apply ``actor``'s action; return the signed update."""
        if authority.node_id != self.state.authority:
            raise ValueError("only the authority of the current epoch issues updates")
        rules.authorize(self.state, actor, action)
        update = Update(
            self.room_id, self.state.epoch, self.state.seq + 1, self.hash(), actor, action
        )
        data = wire.seal_bytes(authority, update)
        self._advance(room.apply(self.state, actor, action), update, data)
        return data

    def receive(self, data: bytes) -> Update:
        """As a member: verify and apply a signed update; raise and change nothing if it is bad."""
        envelope = wire.expect(wire.decode(data), wire.Signed)
        update = wire.expect(wire.open_signed(envelope), Update)
        state = self.state
        if update.room_id != state.room_id:
            raise Refused("update for another room")
        if update.epoch < state.epoch:
            raise Refused(f"stale epoch {update.epoch} (current {state.epoch})")
        if update.epoch > state.epoch:
            raise OutOfSync(f"update from unknown epoch {update.epoch} (current {state.epoch})")
        if envelope.signer != state.authority:
            raise Refused("update not signed by the room's authority")
        if update.seq <= state.seq:
            self._check_replay(update, data)
            raise Refused(f"replayed seq {update.seq} (current {state.seq})")
        if update.seq != state.seq + 1:
            raise OutOfSync(f"seq gap: got {update.seq}, expected {state.seq + 1}")
        if update.prev_hash != self.hash():
            raise OutOfSync("hash chain mismatch")
        rules.authorize(state, update.actor, update.action)
        self._advance(room.apply(state, update.actor, update.action), update, data)
        return update

    def snapshot(self, authority: Identity) -> bytes:
        """As the authority: the signed snapshot of the current state."""
        encoded = room.encode_state(self.state)
        snap = Snapshot(self.room_id, self.state.epoch, self.state.seq, self.genesis, encoded)
        return wire.seal_bytes(authority, snap)

    def accept_takeover(self, claim: succession.Claim) -> None:
        """Hand the room to a verified claim's claimant; OutOfSync if the claim's base differs."""
        takeover = claim.takeover
        if (takeover.base_seq, takeover.base_hash) != (self.state.seq, self.hash()):
            raise OutOfSync("takeover is based on a different state; a snapshot is needed")
        members = self._members
        self.adopt(room.with_authority(self.state, takeover.epoch, takeover.claimant))
        self._members = members  # a takeover changes no member

    def adopt(self, state: RoomState) -> None:
        """Replace the state (after a verified takeover or a newer snapshot)."""
        self.state = state
        self._hash = None
        self._members = None

    def _advance(self, state: RoomState, update: Update, data: bytes) -> None:
        self._recent[(update.epoch, update.seq)] = data
        if len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)
        members = self._members
        before = self.state
        self.adopt(state)
        if members is not None:
            # A change touches few members (room.apply): rehash their buckets only.
            changed = room.changed_members(before, state, update.actor, update.action)
            self._members = members.updated(state.members, changed)

    def _check_replay(self, update: Update, data: bytes) -> None:
        seen = self._recent.get((update.epoch, update.seq))
        if seen is not None and seen != data:
            raise Equivocation(
                f"authority signed two different updates for epoch {update.epoch} seq {update.seq}",
                first=seen,
                second=data,
            )


def _verify_snapshot(data: bytes) -> tuple[RoomState, bytes]:
    envelope = wire.expect(wire.decode(data), wire.Signed)
    snap = wire.expect(wire.open_signed(envelope), Snapshot)
    first = room.initial_state(snap.genesis)
    if snap.room_id != first.room_id:
        raise Refused("snapshot's genesis does not match its room id")
    state = room.decode_state(snap.state)
    if (state.room_id, state.host) != (first.room_id, first.host):
        raise Refused("snapshot state does not belong to its genesis")
    if (state.max_speakers, state.max_cohosts) != (first.max_speakers, first.max_cohosts):
        raise Refused("snapshot changes the room's limits")
    if (state.epoch, state.seq) != (snap.epoch, snap.seq):
        raise WireError("snapshot header does not match its state")
    if envelope.signer != state.authority:
        raise Refused("snapshot not signed by the room's authority")
    return state, snap.genesis
