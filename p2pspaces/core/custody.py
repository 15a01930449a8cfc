"""Proofs of authority: the chain of custody from the room's host to whoever holds an epoch.

The host's key is the root of trust for its room (the room id is the hash of its signed
genesis).  The host may hold any epoch.  Anyone else holds epoch ``e + 1`` only by one of two
steps from the entitled authority of a state at epoch ``e``:

* **takeover**: it was a successor (a co-host other than the authority) in that state, and
  claimed ``e + 1`` from exactly that state with the votes the state's authority set requires
  (:mod:`p2pspaces.core.succession`);
* **hand-over**: that state's authority left, and it was the first successor (the ``leave``
  update, signed by the leaving authority and chained to that state, names it).

A :class:`~p2pspaces.core.wire.Mandate` is one such step, made checkable without the history:
the state's canonical header (its hash is the state hash), the state's attestation signed by
its own authority (an update leading to it, or a heartbeat; for a hand-over, the ``leave``
update chained to it), and the claim.  A *custody* is the list of mandates since the last epoch
the host held, in order; each link's state is held by the authority the previous link made.
Every snapshot carries its custody, and whoever receives one checks it against the genesis
before believing a word of it (:func:`verify`).

The epoch the first link starts from is the custody's *root*: the host's term it descends
from.  A node never follows a custody rooted in an older host term than the newest it knows
(:class:`Term`): once the host has reclaimed its room, no branch from before can come back,
however high its epoch.  The host's own check is stronger (see
:meth:`p2pspaces.core.ledger.Replica.branch_refusal`).

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pspaces.core import statebytes, succession, wire
from p2pspaces.core.errors import Refused, Unentitled, WireError
from p2pspaces.core.identity import NodeId
from p2pspaces.core.room import RoomState
from p2pspaces.core.statebytes import StateHeader
from p2pspaces.core.wire import ActionKind, Mandate


@dataclass(frozen=True, slots=True)
class Term:
    """Who holds an epoch and by which right: ``root`` is the host's term it descends from
    (its own epoch when the host holds it), ``custody`` the mandates since then."""

    epoch: int
    authority: NodeId
    root: int
    custody: tuple[bytes, ...] = ()
    first: NodeId | None = None
    """The co-host the first link made authority (None for the host's own term)."""

    def extended(self, epoch: int, authority: NodeId, mandate: bytes) -> Term:
        """The term one more mandate makes."""
        first = self.first if self.custody else authority
        return Term(epoch, authority, self.root, (*self.custody, mandate), first)


def attested(basis: bytes, header: succession.Leadership, digest: bytes) -> None:
    """Check that ``basis`` is the state's own authority attesting it (epoch, seq, hash)."""
    envelope, message = _open(basis)
    if envelope.signer != header.authority:
        raise Unentitled("attestation not signed by the state's authority")
    if isinstance(message, wire.Update | wire.Heartbeat):
        said = (message.room_id, message.epoch, message.seq, message.state_hash)
    else:
        raise Unentitled(f"a {message.TYPE} attests no state")
    if said != (header.room_id, header.epoch, header.seq, digest):
        raise Unentitled("attestation is of another state")


def link(header: bytes, basis: bytes, claim: bytes = b"") -> bytes:
    """One mandate's bytes (a takeover with ``claim``, else a hand-over)."""
    return wire.encode(Mandate(header, basis, claim))


def verify(genesis: RoomState, custody: tuple[bytes, ...], epoch: int, authority: bytes) -> Term:
    """Check that ``authority`` holds ``epoch`` of ``genesis``'s room by right; its term.

    Raises :class:`Unentitled` (or :class:`WireError`) with the first link that fails."""
    if authority == genesis.host:
        if custody:
            raise Unentitled("the host's own term needs no custody")
        return Term(epoch, NodeId(authority), epoch)
    if not custody:
        raise Unentitled(f"no proof that {authority.hex()[:8]} holds epoch {epoch}")
    holder: tuple[int, NodeId] | None = None
    root = -1
    first: NodeId | None = None
    for index, data in enumerate(custody):
        try:
            step_epoch, step_holder, header = _step(genesis, data)
        except Refused as exc:
            raise Unentitled(f"custody link {index + 1}: {exc.reason}") from None
        if holder is None:
            if header.authority != genesis.host:
                raise Unentitled("custody does not start from a state the host held")
            root = header.epoch
            first = step_holder
        elif (header.epoch, header.authority) != holder:
            raise Unentitled(f"custody link {index + 1} does not follow the one before")
        holder = (step_epoch, step_holder)
    if holder != (epoch, authority):
        raise Unentitled(f"custody ends elsewhere than epoch {epoch} of its signer")
    return Term(epoch, NodeId(authority), root, custody, first)


def _step(genesis: RoomState, data: bytes) -> tuple[int, NodeId, StateHeader]:
    """Check one mandate; the epoch and authority it makes, and the state it starts from."""
    mandate = wire.expect(wire.decode(data, wire.MANDATE_MAX + 64), Mandate)
    header = statebytes.decode_header(mandate.header)
    digest = statebytes.header_hash(mandate.header)
    if (header.room_id, header.host) != (genesis.room_id, genesis.host):
        raise Unentitled("a state of another room")
    if header.ended:
        raise Unentitled("a state of an ended room")
    if header.epoch + 1 >= wire.COUNTER_MAX:
        raise Unentitled("epoch at the limit")
    if mandate.claim:
        attested(mandate.basis, header, digest)
        claim = succession.verify_claim(header, mandate.claim)
        takeover = claim.takeover
        if takeover.claimant == header.host:
            raise Unentitled("a host's reclaim starts a custody, never sits in one")
        if (takeover.base_seq, takeover.base_hash) != (header.seq, digest):
            raise Unentitled("claim is based on another state")
        return takeover.epoch, NodeId(takeover.claimant), header
    return header.epoch + 1, _handed_to(header, digest, mandate.basis), header


def _handed_to(header: StateHeader, digest: bytes, basis: bytes) -> NodeId:
    """A hand-over: the state's authority signed its leave, chained to the state."""
    envelope, update = _open(basis)
    if not isinstance(update, wire.Update) or envelope.signer != header.authority:
        raise Unentitled("a hand-over needs the leaving authority's own signed leave")
    chained = (update.room_id, update.epoch, update.seq, update.prev_hash)
    if chained != (header.room_id, header.epoch, header.seq + 1, digest):
        raise Unentitled("the leave is not chained to the state")
    if update.actor != header.authority or update.action.kind is not ActionKind.LEAVE:
        raise Unentitled("a hand-over is the authority's own leave")
    order = succession.successors(header)
    if not order:
        raise Unentitled("a leave with no successor ends the room")
    return order[0]


def _open(data: bytes) -> tuple[wire.Signed, wire.Message]:
    try:
        envelope = wire.expect(wire.decode(data, 2048), wire.Signed)
        return envelope, wire.open_signed(envelope)
    except WireError as exc:
        raise Unentitled(f"attestation: {exc.reason}") from None
