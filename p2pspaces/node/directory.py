"""The room directory: what discovery says is live on the network, capped, as events.

Fed by :mod:`p2pspaces.net.discovery` (every advert there is already signature-checked).  It keeps
the adverts of at most :data:`ADVERTS_MAX` nodes (the least recently heard go first: keys are
free to make, so a flood of fresh adverts cannot grow memory) and reports rooms appearing,
changing and going as ``room_found`` / ``room_lost``.  The room this node is in is never reported
lost while it is in it: a takeover or a reclaim moves the advert from one node to another.

One node's advert stands for a room at a time.  A room's host proves its advert (the id is made
from its key: :attr:`RoomAdvert.birth`), so the host's always stands.  A co-host keeping the room
cannot prove as much in a TXT record, so among adverts not by the host the first stands, and a
second advert for a listed room id under another key is ignored and logged once; when the
standing advert goes, the host's (if any), else the most recently heard other one takes its
place.  A stranger can so list a room it does not hold only while neither its host nor a keeper
heard earlier advertises it, and a join through that listing fails on the room's signed state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import Event, RoomFound, RoomLost
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.wire import RoomId
from p2pspaces.net.discovery import DiscoveryEvent, PeerAdvert, PeerGone, RoomAdvert

POLL_S = 0.05
TITLE_SETTLE_S = 1.5
"""A join by title waits this long after discovery starts, so a second room of the same title
is seen (and the join refused as ambiguous) rather than the first one picked at random."""
ADVERTS_MAX = 2048
"""Nodes whose adverts are remembered (a LAN event with more nodes than this is not our aim)."""

log = logging.getLogger(__name__)


class AmbiguousRoom(CommandError):
    """More than one live room answers to a name: never pick one at random."""

    def __init__(self, ref: str, candidates: tuple[RoomFound, ...]) -> None:
        listed = "; ".join(
            f"{room.title!r} hosted by {room.host_name} ({short_fingerprint(room.host)}), "
            f"room id {room.room.hex()[:12]}"
            for room in candidates
        )
        super().__init__(
            f"{len(candidates)} Spaces are called {ref!r}: {listed}. "
            "Join one by its room id (or a unique prefix of it)."
        )
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class RoomListing:
    """A room as discovery sees it."""

    advert: PeerAdvert
    room: RoomAdvert


class RoomDirectory:
    """The rooms and node adverts discovery reports, capped."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        current_room: Callable[[], bytes | None],
        trust: Callable[[NodeId, str], str] = lambda node, name: "new",
    ) -> None:
        """``trust`` says whether a host was met before (a :class:`Trust` value's name)."""
        self._emit = emit
        self._current_room = current_room
        self._trust = trust
        self.adverts: OrderedDict[NodeId, PeerAdvert] = OrderedDict()
        self.rooms: dict[RoomId, RoomListing] = {}
        self._unreported: set[RoomId] = set()
        self._ignored: OrderedDict[tuple[RoomId, NodeId], None] = OrderedDict()
        self._started = time.monotonic()

    def on_discovery(self, event: DiscoveryEvent) -> None:
        """A node appeared, changed its advert, or went."""
        if isinstance(event, PeerGone):
            advert = self.adverts.pop(event.node_id, None)
            if advert is not None and advert.room is not None:
                self._room_gone(RoomId(advert.room.room_id), event.node_id)
            return
        advert = event.advert
        old = self.adverts.pop(advert.node_id, None)
        self.adverts[advert.node_id] = advert
        self._trim()
        old_room = old.room if old is not None else None
        if old_room is not None and (
            advert.room is None or old_room.room_id != advert.room.room_id
        ):
            self._room_gone(RoomId(old_room.room_id), advert.node_id)
        if advert.room is None or (old is not None and old == advert):
            return
        self._offer(advert, advert.room)

    def _offer(self, advert: PeerAdvert, room: RoomAdvert, *, moved: bool = False) -> None:
        """List ``advert`` for its room unless another node's advert stands for it (``moved``:
        it takes the place of one that went)."""
        room_id = RoomId(room.room_id)
        current = self.rooms.get(room_id)
        rival = current is not None and current.advert.node_id != advert.node_id
        if rival and current is not None and (current.advert.by_host or not advert.by_host):
            self._ignore(room_id, advert, current.advert)
            return
        listing = self.rooms[room_id] = RoomListing(advert, room)
        self._unreported.discard(room_id)
        self._emit(self._found(listing, changed=moved or current is not None))

    def _ignore(self, room_id: RoomId, advert: PeerAdvert, standing: PeerAdvert) -> None:
        """Say once that ``advert`` names a room another node's advert stands for."""
        key = (room_id, advert.node_id)
        if key in self._ignored:
            return
        self._ignored[key] = None
        if len(self._ignored) > ADVERTS_MAX:
            self._ignored.popitem(last=False)
        log.warning(
            "ignoring %s's advert for room %s: %s advertises it%s",
            short_fingerprint(advert.node_id),
            room_id.hex()[:12],
            short_fingerprint(standing.node_id),
            " and is its host" if standing.by_host else " (heard first)",
        )

    def left_room(self, room_id: bytes) -> None:
        """We left ``room_id``: if it went from the network meanwhile, say so now."""
        if room_id in self._unreported:
            self._unreported.discard(RoomId(room_id))
            self._emit(RoomLost(room_id))

    def listed(self) -> tuple[RoomFound, ...]:
        """Every room known to be live, by title."""
        found = [self._found(listing, changed=False) for listing in self.rooms.values()]
        return tuple(sorted(found, key=lambda room: (room.title.lower(), room.room)))

    def advert_of(self, node: NodeId) -> PeerAdvert | None:
        """The last advert of ``node``, if it is remembered."""
        return self.adverts.get(node)

    def find(self, ref: str) -> RoomListing:
        """The room named by ``ref``: a room id, a unique id prefix, or an exact title."""
        ref_lower = ref.lower()
        rooms = list(self.rooms.values())
        exact = [r for r in rooms if r.room.room_id.hex() == ref_lower]
        prefix = [r for r in rooms if r.room.room_id.hex().startswith(ref_lower)]
        titled = [r for r in rooms if r.room.title == ref]
        for matches in (exact, prefix if len(ref) >= 4 else [], titled):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                found = sorted(
                    (self._found(m, changed=False) for m in matches), key=lambda room: room.room
                )
                raise AmbiguousRoom(ref, tuple(found))
        raise CommandError(f"no room {ref!r} on the network")

    async def wait_for(self, ref: str, wait: float) -> RoomListing:
        """The room named by ``ref``, waiting up to ``wait`` s for discovery to find it."""
        deadline = time.monotonic() + wait
        while True:
            try:
                listing = self.find(ref)
                by_title = listing.room.title == ref and not listing.room.room_id.hex().startswith(
                    ref.lower()
                )
                settle = self._started + TITLE_SETTLE_S - time.monotonic()
                if by_title and settle > 0:
                    await asyncio.sleep(settle)
                    continue
                return listing
            except AmbiguousRoom:
                raise
            except CommandError:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(POLL_S)

    def _room_gone(self, room_id: RoomId, node_id: NodeId) -> None:
        """A node stopped advertising a room; it is gone unless another node (a co-host that
        took over) advertises it now."""
        listing = self.rooms.get(room_id)
        if listing is None or listing.advert.node_id != node_id:
            return
        del self.rooms[room_id]
        heir = self._heir(room_id)
        if heir is not None and heir.room is not None:
            self._offer(heir, heir.room, moved=True)
            return
        if self._current_room() == room_id:
            self._unreported.add(room_id)  # we are in it: it is alive, whoever advertises it
            return
        self._emit(RoomLost(room_id))

    def _heir(self, room_id: RoomId) -> PeerAdvert | None:
        """Another live advert for ``room_id``: the host's, else the most recently heard."""
        others = [a for a in self.adverts.values() if a.room and a.room.room_id == room_id]
        hosts = [a for a in others if a.by_host]
        chosen = hosts or others
        return chosen[-1] if chosen else None

    def _found(self, listing: RoomListing, *, changed: bool) -> RoomFound:
        advert, info = listing.advert, listing.room
        return RoomFound(
            info.room_id,
            info.title,
            advert.node_id,
            advert.name,
            info.speakers,
            info.listeners,
            changed,
            self._trust(advert.node_id, advert.name),
            info.recording,
            info.host,
        )

    def _trim(self) -> None:
        while len(self.adverts) > ADVERTS_MAX:
            node, advert = self.adverts.popitem(last=False)
            if advert.room is not None:
                self._room_gone(RoomId(advert.room.room_id), node)
