"""What a node does for browser guests: as their gateway, it relays their own signed messages
and their voice into the room and tells the room where its page is and how busy it is; as any
member, it plays a guest's voice relayed by the gateway the signed state names, and only that.

The web gateway (``p2pspaces.web``) talks to the room through :class:`GuestRelay` alone."""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.audio.proof import TIMESTAMP_WRAP
from p2pspaces.core import wire
from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import WebReady
from p2pspaces.core.hearing import HEARD_DB
from p2pspaces.core.identity import NODE_ID_SIZE, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.session import RoomSession
from p2pspaces.net.discovery import WebPorts
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.node.directory import RoomDirectory

REBASE_AHEAD = 10 * SAMPLE_RATE
"""A guest's timestamp more than this ahead of its stream's start, or behind it: a new stream."""
TIMESTAMPS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class RelayedVoice:
    """A guest's RTP packet as its gateway relays it: the fields the jitter buffer reads."""

    guest: NodeId
    sequence_number: int
    timestamp: int
    payload: bytes

    def encode(self) -> bytes:
        header = struct.pack("!HI", self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF)
        return self.guest + header + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RelayedVoice | None:
        """The frame, or None if it is too short to be one."""
        if len(data) < NODE_ID_SIZE + 7:
            return None
        seq, timestamp = struct.unpack_from("!HI", data, NODE_ID_SIZE)
        return cls(NodeId(data[:NODE_ID_SIZE]), seq, timestamp, data[NODE_ID_SIZE + 6 :])


class RtpPacket(Protocol):
    """The fields of a received RTP packet a relay reads (aiortc's ``RtpPacket`` has them)."""

    sequence_number: int
    timestamp: int
    payload: bytes


class Shell(Protocol):
    """What the relay needs from the node it is part of."""

    session: RoomSession
    mesh: Mesh
    audio: AudioEngine
    directory: RoomDirectory
    clock: Callable[[], float]

    @property
    def replica(self) -> Replica | None: ...

    def pump(self) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...


class GuestRelay:
    """The node's side of its web gateway, and every member's side of others' gateways."""

    def __init__(self, shell: Shell, on_web: Callable[[], None]) -> None:
        self._shell = shell
        self._on_web = on_web
        self.web: WebPorts | None = None
        """Where this node serves phones (from its web service's WebReady), for its advert."""
        self._timestamps: dict[NodeId, tuple[int, int]] = {}
        """Per guest speaking through us: its stream's first RTP timestamp and our base."""

    def relay(self, guest: NodeId, data: bytes) -> wire.Message:
        """Pass on a guest's own signed message (see :meth:`RoomSession.relay_guest`);
        :class:`CommandError` says why not."""
        message = self._shell.session.relay_guest(guest, data, self._shell.clock())
        self._shell.pump()
        return message

    def set_load(self, http_port: int, https_port: int, guests: int, max_guests: int) -> None:
        """Tell the room where our guest page is and how busy it is."""
        self._shell.session.set_web_load(http_port, https_port, guests, max_guests)
        self._shell.pump()

    def drop(self, guest: NodeId) -> None:
        """A guest's page went away: take it out of the room."""
        with contextlib.suppress(CommandError):
            self._shell.session.drop_guest(guest, self._shell.clock())
            self._shell.pump()

    def contact_of(self, node: NodeId) -> wire.Contact | None:
        """Where a fellow member said it listens (and whether it serves browsers)."""
        return self._shell.session.contact_of(node)

    async def voice(self, guest: NodeId, packet: RtpPacket) -> None:
        """Our guest's RTP packet (the gateway checked it may speak): play it here and relay
        it to every member we are linked to; a member that relays the room to others (a large
        room: :mod:`p2pspaces.audio.relay`) gets it as a relayed packet we sign, so that it
        can pass it on to listeners who are not linked to us."""
        frame = RelayedVoice(guest, packet.sequence_number, packet.timestamp, packet.payload)
        broadcaster = self._shell.audio.broadcaster
        routes = broadcaster.routes
        relays = [p for p in broadcaster.outlets if routes.relays(p) and not routes.relayed(p)]
        proven = None
        if relays:
            pts = self._rebase(guest, packet.timestamp)
            proven = routes.prove_for(guest, pts, packet.payload)
        if proven is not None:
            for peer in relays:
                await broadcaster.outlets[peer].send(proven[1], pts, proven[0])
            # Those who hear through a relay get it from there: one stream per voice.
            others = {p for p in broadcaster.outlets if routes.relays(p) or routes.relayed(p)}
        else:
            others = set()
        self._shell.mesh.send_voice(frame.encode(), but=others)
        await self._shell.audio.on_guest_voice(guest, frame)

    def _rebase(self, guest: NodeId, timestamp: int) -> int:
        """The guest's RTP timestamp counted from our wall clock when its stream (re)started,
        so that what we sign for it keeps rising when its page reloads (a browser starts
        each stream at a random timestamp) and listeners take it only forward."""
        entry = self._timestamps.get(guest)
        if entry is not None:
            first, base = entry
            step = (timestamp - first) % TIMESTAMP_WRAP
            if step < REBASE_AHEAD:
                return (base + step) % TIMESTAMP_WRAP
        now = int(time.time() * SAMPLE_RATE)
        base = now - now % FRAME_SAMPLES
        if len(self._timestamps) >= TIMESTAMPS_KEPT:
            self._timestamps.clear()
        self._timestamps[guest] = (timestamp, base)
        return base % TIMESTAMP_WRAP

    def heard(self, guest: NodeId, level_db: float, speaking: Iterable[bytes]) -> None:
        """Our guest's page played the room this loud over the last second, while
        ``speaking`` spoke: tell each of them, as "heard by" reports for that guest."""
        shell = self._shell
        hearing, state = shell.session.hearing, shell.session.state
        if state is None or state.gateway_of(guest) != shell.session.me:
            return
        speakers = [NodeId(m) for m in speaking]
        hearing.report(dict.fromkeys(speakers, level_db), guest=guest)
        if shell.session.me in speakers and level_db >= HEARD_DB:  # our own voice, heard here
            report = wire.Heard(state.room_id, max(-127, min(0, round(level_db))), guest)
            hearing.on_heard(shell.session.me, report, shell.clock())
        shell.pump()

    def on_voice(self, link: Link, data: bytes) -> None:
        """A guest's voice frame relayed by ``link``'s node: played only if the signed state
        names that node as the guest's gateway and the guest may speak now."""
        frame = RelayedVoice.parse(data)
        state = self._shell.session.state
        if frame is None or state is None or state.gateway_of(frame.guest) != link.peer_id:
            link.voice_refused += 1
            return
        self._shell.spawn(self._shell.audio.on_guest_voice(frame.guest, frame))

    def web_ready(self, event: WebReady) -> None:
        """Our web service is up: the advert says where."""
        http, https = urlsplit(event.http).port, urlsplit(event.https).port
        if http and https:
            self.web = WebPorts(http, https, event.cert_sha256)
            self._on_web()

    def phones_page(self) -> tuple[WebReady, str] | None:
        """Where phones join our room from another node that serves it (its advert says so),
        and that node's name; None if no advert of the room says."""
        replica = self._shell.replica
        rooms = self._shell.directory.rooms
        listing = rooms.get(replica.room_id) if replica is not None else None
        if listing is None or listing.room.web is None or not listing.advert.addresses:
            return None
        web, address = listing.room.web, listing.advert.addresses[0]
        page = WebReady(
            f"http://{address}:{web.http}/", f"https://{address}:{web.https}/", web.cert_sha256
        )
        return page, listing.advert.name
