"""Where the room's members listen, so that they can reach each other without mDNS.

On a network that filters multicast, discovery finds nobody, yet a member joined by address must
still reach the speakers it hears and the co-host that takes over (docs/DESIGN.md section 4).  So
every member signs a :class:`~p2pspaces.core.wire.Contact` (its addresses and signaling port) and
sends it to the authority once it is in; the authority relays it to the other members, and hands
a joiner the room's contacts in bundles.  Only a node itself can say where it is: an entry signed
by anyone else is refused, and the link handshake proves the key at the far end in any case.
The book holds an entry only for the room's members and authority set, so the room's own caps
bound it.
"""

from __future__ import annotations

import logging

from p2pspaces.core import wire
from p2pspaces.core.context import SessionContext
from p2pspaces.core.errors import PeerError, WireError
from p2pspaces.core.identity import NodeId
from p2pspaces.core.room import RoomState

log = logging.getLogger("p2pspaces.session")


class ContactBook:
    """The signed contacts of the room's members, as this node has them."""

    def __init__(self, ctx: SessionContext) -> None:
        self._ctx = ctx
        self.own: tuple[tuple[str, ...], int] | None = None
        """Where this node listens (set by the shell once it listens)."""
        self.web: tuple[int, int, int, int] = (0, 0, 0, 0)
        """The guest page's ports, guests served and their cap (zeros: no page)."""
        self._signed: dict[NodeId, bytes] = {}
        self._reach: dict[NodeId, wire.Contact] = {}

    def reach(self, node: NodeId) -> wire.Contact | None:
        """Where ``node`` said it listens, if it is in the room and told us."""
        return self._reach.get(node)

    def announce(self, peer: NodeId) -> None:
        """Send our own signed contact to ``peer`` (a member to its authority)."""
        entry = self._own_entry()
        state = self._ctx.state
        if entry is not None and state is not None:
            self._ctx.send(peer, wire.encode(wire.Contacts(state.room_id, (entry,))))

    def set_web(self, web: tuple[int, int, int, int]) -> None:
        """Our guest page or its load changed: tell the room (the authority relays it; as the
        authority, we tell every member ourselves)."""
        if web == self.web:
            return
        self.web = web
        ctx = self._ctx
        state = ctx.state
        entry = self._own_entry()
        if state is None or entry is None:
            return
        bundle = wire.encode(wire.Contacts(state.room_id, (entry,)))
        if ctx.is_authority:
            ctx.send_members(bundle)
        elif ctx.me in state.members:
            ctx.send(state.authority, bundle)

    def hand_to(self, joiner: NodeId) -> None:
        """Give a member (a joiner) every contact we hold, ours first, in bundles."""
        state = self._ctx.state
        if state is None:
            return
        own = self._own_entry()
        entries = [own] if own is not None else []
        entries += [data for node, data in sorted(self._signed.items()) if node != joiner]
        step = wire.CONTACTS_PER_MESSAGE
        for start in range(0, len(entries), step):
            bundle = wire.Contacts(state.room_id, tuple(entries[start : start + step]))
            self._ctx.send(joiner, wire.encode(bundle))

    def on_contacts(self, peer: NodeId, message: wire.Contacts) -> None:
        """Contacts from ``peer``: a member's own, or the authority's relay of the room's."""
        ctx = self._ctx
        state = ctx.state
        if state is None or message.room_id != state.room_id:
            return  # not (or no longer) in that room
        from_authority = peer == state.authority and peer != ctx.me
        fresh: list[bytes] = []
        for data in message.entries:
            try:
                envelope, contact = wire.open_signed_bytes(data, wire.Contact)
            except WireError as exc:
                raise PeerError(f"bad contact: {exc}") from None
            signer = NodeId(envelope.signer)
            if signer != peer and not from_authority:
                raise PeerError("relayed a contact but is not the room's authority")
            if contact.room_id != state.room_id or not _in_room(state, signer):
                log.debug("contact of a node not in the room ignored")
                continue
            if signer == ctx.me or self._signed.get(signer) == data:
                continue
            self._signed[signer] = data
            self._reach[signer] = contact
            fresh.append(data)
        if ctx.is_authority and fresh:
            ctx.send_members(wire.encode(wire.Contacts(state.room_id, tuple(fresh))), but=peer)

    def prune(self, state: RoomState) -> None:
        """Forget the contacts of nodes no longer in the room."""
        for node in [n for n in self._signed if not _in_room(state, n)]:
            del self._signed[node]
            del self._reach[node]

    def clear(self) -> None:
        """A new room: forget the last one's contacts."""
        self._signed.clear()
        self._reach.clear()

    def _own_entry(self) -> bytes | None:
        state = self._ctx.state
        if self.own is None or state is None:
            return None
        addresses, port = self.own
        contact = wire.Contact(state.room_id, addresses[: wire.ADDRESSES_MAX], port, *self.web)
        return wire.seal_bytes(self._ctx.identity, contact)


def _in_room(state: RoomState, node: NodeId) -> bool:
    return node in state.members or node == state.authority or node in state.authority_set()
