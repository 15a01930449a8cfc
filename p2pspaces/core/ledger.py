"""Signed updates and snapshots: one replica of a room's history.

A :class:`Replica` holds the state a node believes, the host's signed genesis, the hash of the
current state, the proof that the state's authority holds its epoch by right (its
:class:`~p2pspaces.core.custody.Term`), and the authority's own attestation of the state (the
update that led to it, or a heartbeat), which a co-host's claim to succeed it carries.

The authority calls :meth:`Replica.issue` to authorise, apply and sign a change; members call
:meth:`Replica.apply_update` with an update already opened (its signature checked once, at the
edge), which checks, in order, the room, the epoch, the signer (this epoch's authority), the
seq, the hash chain and the rules, applies the change, and checks the resulting hash the
authority signed.  Any failure raises and leaves the replica exactly as it was.
:meth:`Replica.receive` does the same from the bytes (tests, benchmarks).

Pure: no I/O, no clock.  Deterministic: replicas fed the same updates hold identical states.
"""

from __future__ import annotations

from collections import OrderedDict

from p2pspaces.core import custody, room, rules, statebytes, succession, wire
from p2pspaces.core.custody import Term
from p2pspaces.core.errors import Equivocation, OutOfSync, Refused, Unentitled, WireError
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import RoomId, Snapshot, Update

_REMEMBERED = 256
"""How many recent updates a replica keeps to recognise replays and equivocation."""
REVOKED_MAX = 1024
"""Co-hosts demoted, removed or blocked in one term that a replica remembers."""
_REVOKING = frozenset(
    {wire.ActionKind.REMOVE_COHOST, wire.ActionKind.REMOVE, wire.ActionKind.BLOCK}
)


class Replica:
    """A room's state as one node holds it, with the proofs needed to extend or share it."""

    def __init__(self, state: RoomState, genesis: bytes, term: Term | None = None) -> None:
        self.state = state
        self.genesis = genesis
        envelope = wire.expect(wire.decode(genesis), wire.Signed)
        self.host_name = wire.expect(wire.decode(envelope.payload), wire.Genesis).host_name
        """The host's name as it signed it at the start (verified by ``initial_state``): the
        name to show for the host even while it is out of the room after a takeover."""
        self.term = term if term is not None else Term(state.epoch, state.host, state.epoch)
        """Who holds the current epoch and by which right."""
        self.host_term = self.term.root
        """The newest epoch this replica knows the host to have held."""
        self.attestation: bytes | None = None
        """The current authority's signed word for the current state (update or heartbeat)."""
        self.revoked: set[NodeId] = set()
        """Co-hosts whose place was taken from them on purpose in this term (demoted, removed,
        blocked; not dropped for silence, which a partition does to a co-host that is fine)."""
        self._hash: bytes | None = None
        self._members: statebytes.MemberDigests | None = None
        self._recent: OrderedDict[tuple[int, int], tuple[bytes, bytes]] = OrderedDict()
        """(epoch, seq) -> (state hash, the authority's signed word for it), recent ones."""

    @classmethod
    def from_genesis(cls, genesis: bytes) -> Replica:
        """A new room's replica, from the host's signed genesis envelope."""
        return cls(room.initial_state(genesis), genesis)

    @classmethod
    def from_snapshot(cls, data: bytes, room_id: RoomId | None = None) -> Replica:
        """Verify a signed snapshot (of ``room_id``, if given) and return its replica."""
        envelope, snap = wire.open_signed_bytes(data, Snapshot)
        return cls.from_opened(envelope, snap, room_id)

    @classmethod
    def from_opened(
        cls, envelope: wire.Signed, snap: Snapshot, room_id: RoomId | None = None
    ) -> Replica:
        """:meth:`from_snapshot` for a snapshot already opened (its signature checked)."""
        if room_id is not None and snap.room_id != room_id:
            raise Refused("snapshot of another room")
        first = room.initial_state(snap.genesis)
        if snap.room_id != first.room_id:
            raise Refused("snapshot's genesis does not match its room id")
        state = statebytes.decode_state(snap.state)
        if (state.room_id, state.host) != (first.room_id, first.host):
            raise Refused("snapshot state does not belong to its genesis")
        if (state.max_speakers, state.max_cohosts) != (first.max_speakers, first.max_cohosts):
            raise Refused("snapshot changes the room's limits")
        if (state.epoch, state.seq) != (snap.epoch, snap.seq):
            raise WireError("snapshot header does not match its state")
        if envelope.signer != state.authority:
            raise Unentitled("snapshot not signed by the authority it names")
        term = custody.verify(first, snap.custody, state.epoch, state.authority)
        return cls(state, snap.genesis, term)

    @property
    def room_id(self) -> RoomId:
        """The room's id."""
        return self.state.room_id

    def hash(self) -> bytes:
        """The current state hash (computed once per state)."""
        if self._hash is None:
            self._hash = statebytes.state_hash(self.state, self._digests())
        return self._hash

    def header(self) -> bytes:
        """The current state's canonical header (its hash is :meth:`hash`)."""
        return statebytes.header_bytes(self.state, self._digests())

    def issue(self, authority: Identity, actor: NodeId, action: wire.Action) -> bytes:
        """As the authority: authorise and apply ``actor``'s action; return the signed update."""
        state = self.state
        if authority.node_id != state.authority:
            raise ValueError("only the authority of the current epoch issues updates")
        if state.seq + 1 >= wire.COUNTER_MAX:
            raise Refused("the room's history is full")
        rules.authorize(state, actor, action)
        prev = self.hash()
        header = self.header() if action.kind is wire.ActionKind.LEAVE else b""
        after = room.apply(state, actor, action)
        members = self._next_digests(state, after, actor, action)
        post = statebytes.state_hash(after, members)
        update = Update(self.room_id, state.epoch, state.seq + 1, prev, actor, action, post)
        data = wire.seal_bytes(authority, update)
        self._commit(after, members, post, signed=(update, data), header=header)
        return data

    def receive(self, data: bytes) -> Update:
        """As a member: open, verify and apply a signed update's bytes."""
        envelope, update = wire.open_signed_bytes(data, Update)
        return self.apply_update(envelope, update, data)

    def apply_update(self, envelope: wire.Signed, update: Update, data: bytes) -> Update:
        """As a member: apply an opened update (signature already checked); raise and change
        nothing if it is bad."""
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
            self.check_attestation(envelope, update, data)
            raise Refused(f"replayed seq {update.seq} (current {state.seq})")
        if update.seq != state.seq + 1:
            raise OutOfSync(f"seq gap: got {update.seq}, expected {state.seq + 1}")
        if update.prev_hash != self.hash():
            raise OutOfSync("hash chain mismatch")
        rules.authorize(state, update.actor, update.action)
        header = self.header() if update.action.kind is wire.ActionKind.LEAVE else b""
        after = room.apply(state, update.actor, update.action)
        members = self._next_digests(state, after, update.actor, update.action)
        post = statebytes.state_hash(after, members)
        if post != update.state_hash:
            raise OutOfSync("the change leads to another state than the authority signed")
        self._commit(after, members, post, signed=(update, data), header=header)
        return update

    def note_heartbeat(self, envelope: wire.Signed, beat: wire.Heartbeat, data: bytes) -> None:
        """Keep the authority's heartbeat as the attestation of our state, if it is of it."""
        state = self.state
        said = (envelope.signer, beat.room_id, beat.epoch, beat.seq)
        ours = said == (state.authority, state.room_id, state.epoch, state.seq)
        if ours and beat.state_hash == self.hash():
            self.attestation = data
            self._remember(beat.epoch, beat.seq, beat.state_hash, data)

    def check_attestation(
        self, envelope: wire.Signed, said: Update | wire.Heartbeat, data: bytes
    ) -> None:
        """:class:`Equivocation` if the authority's signed word ``said`` (an update or a
        heartbeat, perhaps relayed by another member) names another state for an (epoch, seq)
        it already attested to us differently: proof that it showed members different rooms."""
        state = self.state
        if envelope.signer != state.authority or said.room_id != state.room_id:
            return
        seen = self._recent.get((said.epoch, said.seq))
        if seen is not None and seen[0] != said.state_hash:
            raise Equivocation(
                f"authority signed two different states for epoch {said.epoch} seq {said.seq}",
                first=seen[1],
                second=data,
            )

    def _remember(self, epoch: int, seq: int, digest: bytes, data: bytes) -> None:
        self._recent[(epoch, seq)] = (digest, data)
        self._recent.move_to_end((epoch, seq))
        if len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)

    def snapshot(self, authority: Identity) -> bytes:
        """As the authority: the signed snapshot of the current state, with its custody."""
        state = self.state
        encoded = statebytes.encode_state(state)
        snap = Snapshot(
            self.room_id, state.epoch, state.seq, self.genesis, encoded, self.term.custody
        )
        return wire.seal_bytes(authority, snap)

    def accept_takeover(self, claim: succession.Claim) -> None:
        """Hand the room to a verified claim's claimant; OutOfSync if the claim's base differs,
        :class:`Unentitled` if it cannot join the room's proof of authority."""
        takeover = claim.takeover
        if (takeover.base_seq, takeover.base_hash) != (self.state.seq, self.hash()):
            raise OutOfSync("takeover is based on a different state; a snapshot is needed")
        claimant = NodeId(takeover.claimant)
        if claimant == self.state.host:
            term = Term(takeover.epoch, claimant, takeover.epoch)
        else:
            custody.attested(takeover.basis, self.state, self.hash())
            if len(self.term.custody) >= wire.CUSTODY_MAX:
                raise Refused("too many takeovers since the host last held the room")
            mandate = custody.link(self.header(), takeover.basis, claim.envelope)
            term = self.term.extended(takeover.epoch, claimant, mandate)
        members = self._members
        self._set(room.with_authority(self.state, takeover.epoch, claimant))
        self._members = members  # a takeover changes no member
        self._enter(term)

    def follow(self, fresh: Replica) -> None:
        """We take ``fresh`` (a newer snapshot) as ours: it keeps what we knew of the host."""
        fresh.host_term = max(fresh.host_term, self.host_term)

    def branch_refusal(self, fresh: Replica, me: NodeId) -> str | None:
        """Why this node must not follow ``fresh`` (a verified snapshot of our room), or None.

        Nobody follows a branch rooted in an older term of the host than the newest it knows.
        The host, holding its room when a branch of its current term appears, does not follow
        it if the co-host that began it was demoted, removed or blocked in that term: such a
        co-host cannot take the room back with its old appointment (from a state before the
        host took it away).  A co-host merely dropped for silence is followed: that is what a
        partition does to an honest one, and the host reclaims the room right after."""
        if fresh.term.root < self.host_term:
            return "it descends from an older term of the host"
        state = self.state
        if state.host != me or state.authority != me or fresh.term.root != state.epoch:
            return None
        first = fresh.term.first
        if first is not None and (first in self.revoked or first in state.blocked):
            return "the co-host that began it is no longer one"
        return None

    def _digests(self) -> statebytes.MemberDigests:
        if self._members is None:
            self._members = statebytes.MemberDigests.of(self.state.members)
        return self._members

    def _next_digests(
        self, before: RoomState, after: RoomState, actor: NodeId, action: wire.Action
    ) -> statebytes.MemberDigests:
        # A change touches few members (room.apply): rehash their buckets only.
        changed = room.changed_members(before, after, actor, action)
        return self._digests().updated(after.members, changed)

    def _commit(
        self,
        after: RoomState,
        members: statebytes.MemberDigests,
        digest: bytes,
        *,
        signed: tuple[Update, bytes],
        header: bytes,
    ) -> None:
        update, data = signed
        self._remember(update.epoch, update.seq, digest, data)
        handed_over = after.epoch != self.state.epoch and not after.ended
        target = update.action.target or update.actor
        revoking = update.action.kind in _REVOKING and target in self.state.cohosts
        if revoking and len(self.revoked) < REVOKED_MAX:
            self.revoked.add(NodeId(target))
        self._set(after)
        self._members, self._hash = members, digest
        if handed_over:  # the authority left and handed the room to its first successor
            mandate = custody.link(header, data)
            self._enter(self.term.extended(after.epoch, after.authority, mandate))
        else:
            self.attestation = data

    def _set(self, state: RoomState) -> None:
        self.state = state
        self._hash = None
        self._members = None
        self.attestation = None

    def _enter(self, term: Term) -> None:
        self.term = term
        self.revoked.clear()
        if term.authority == self.state.host:
            self.host_term = max(self.host_term, term.epoch)
