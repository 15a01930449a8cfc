"""The node: the asyncio shell that runs one :class:`RoomSession` over the mesh and the audio.

This is the one place that reads the clock.  It pumps bytes from the mesh into the session and
the session's decisions back out (messages to send, links to close, events, its next timer), and
offers front ends one command API (:meth:`Node.host`, :meth:`Node.join`, :meth:`Node.request`,
:meth:`Node.chat`, :meth:`Node.react`, :meth:`Node.leave`) and one event stream
(:attr:`Node.events`).  Discovery, the advert, dialing and the home folder are parts of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from p2pspaces.audio.devices import Sink, Source
from p2pspaces.core import lifecycle, room, wire
from p2pspaces.core.context import Broadcast, Hangup, Send
from p2pspaces.core.errors import AlreadyTold, CommandError, ErrorCode, PeerError
from p2pspaces.core.events import (
    Ended,
    ErrorEvent,
    Event,
    Joined,
    Left,
    Notice,
    Ready,
    RoomFound,
    StateChanged,
    WebReady,
)
from p2pspaces.core.identity import NODE_ID_SIZE, Identity, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.room import RoomState
from p2pspaces.core.session import RoomSession
from p2pspaces.core.settings import DEFAULT_TIMING, Timing
from p2pspaces.core.wire import Action, ActionKind, RoomId
from p2pspaces.net import ice
from p2pspaces.net.discovery import Discovery, DiscoveryEvent, RoomAdvert, WebPorts
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.net.signaling import SignalingServer
from p2pspaces.node.advert import AdvertKeeper, room_advert
from p2pspaces.node.dialer import address_problem, parse_address, why
from p2pspaces.node.directory import RoomDirectory, RoomListing
from p2pspaces.node.home import HostedRoom
from p2pspaces.node.links import LinkKeeper
from p2pspaces.node.people import PeopleBook
from p2pspaces.node.recorder import RoomRecorder
from p2pspaces.node.voice import voice_engine

log = logging.getLogger(__name__)

MAX_GAIN = 2.0
TAKEOVER_JITTER_S = 0.2
REJOIN_WINDOW_S = 600.0
"""How long after our Space died with its host we join that host's next Space by ourselves."""
"""Co-hosts of equal rank spread their takeover turns over this much (drawn once per node)."""


class Service(Protocol):
    """A part added to a node from above (see :attr:`Node.services`)."""

    async def start(self) -> None:
        """The node is up."""

    async def close(self) -> None:
        """The node is stopping."""


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


class Node:
    """One running p2pspaces peer."""

    def __init__(
        self,
        identity: Identity,
        name: str,
        interface: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        source: Source | None = None,
        sink: Sink | None = None,
        drop_audio: float = 0.0,
        record_dir: Path = Path("p2pspaces-recordings"),
        state_dir: Path | None = None,
        timing: Timing = DEFAULT_TIMING,
        mdns: bool = True,
    ) -> None:
        self.identity = identity
        self.mdns = mdns
        """Whether the node advertises and browses with mDNS.  Without it, rooms are joined by
        address and members find each other from the room's signed contacts."""
        self.state_dir = state_dir
        self.services: list[Service] = []
        """Parts added from above (the web gateway): started once the node is up, closed
        before it stops."""
        self.name = name
        self.timing = timing
        self.addresses = ice.choose_addresses(interface)
        self._interface = interface
        self._clock = clock
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.watchers: list[Callable[[Event], None]] = []
        """Called with every event the node emits, before the front end reads it (the web
        gateway follows the room this way)."""
        self.port = 0
        jitter = random.uniform(0, TAKEOVER_JITTER_S)  # noqa: S311 - spreading, not secrecy
        self.session = RoomSession(
            identity, name, timing, jitter_s=jitter, counter_base=int(time.time() * 1000)
        )
        self.mesh = Mesh(identity, name, clock, self, penalty_s=timing.penalty_s)
        self.mesh.source = interface
        self.audio = voice_engine(
            self.session,
            source,
            sink,
            clock=clock,
            emit=self.emit,
            drop_audio=drop_audio,
        )
        self.mesh.media = self.audio
        self.people = PeopleBook(state_dir)
        self.directory = RoomDirectory(
            self._on_directory,
            self._room_now,
            lambda node, name: self.people.trust(node, name).value,
        )
        self.hosted = HostedRoom(state_dir)
        self._orphaned: tuple[NodeId, float, bytes] | None = None
        """The authority whose silence ended our Space, until when its return is awaited, and
        the room that ended."""
        self.recorder = RoomRecorder(self.audio, record_dir)
        self._signaling = SignalingServer(identity, name, self.mesh.on_session, clock)
        self._discovery = Discovery(
            identity, self.directory_update, interface, self.addresses, int(time.time() * 1000)
        )
        self.advert = AdvertKeeper(self._discovery, name, self._room_advert, timing.reannounce_s)
        self.links = LinkKeeper(
            self.session,
            self.mesh,
            self.directory,
            timing,
            clock=clock,
            spawn=self._spawn,
            emit=self.emit,
            on_refused=self._link_refused,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._moved = asyncio.Event()
        self._join_error = ""
        self._web: WebPorts | None = None
        """Where this node serves phones (from its web service's WebReady), for its advert."""
        self._stopped = False
        self._last_state: RoomState | None = None

    # --- what front ends read ------------------------------------------------------------

    @property
    def node_id(self) -> NodeId:
        """This node's key."""
        return self.identity.node_id

    @property
    def replica(self) -> Replica | None:
        """The room this node is in, with its verified history (None outside a room)."""
        return self.session.replica if lifecycle.in_room(self.session.phase) else None

    @property
    def rooms(self) -> dict[RoomId, RoomListing]:
        """The rooms live on the network, by id."""
        return self.directory.rooms

    def room_list(self) -> tuple[RoomFound, ...]:
        """The rooms live on the network, by title."""
        return self.directory.listed()

    @property
    def is_authority(self) -> bool:
        """Whether this node is its room's authority."""
        return self.session.is_authority

    @property
    def equivocations(self) -> list[tuple[bytes, bytes]]:
        """Proofs that the room's authority signed two different changes for one seq."""
        return list(self.session.equivocations)

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen, advertise, browse, and emit ``ready``."""
        ice.use_addresses(self.addresses)
        bind = self._interface or "0.0.0.0"  # noqa: S104 - a LAN service listens on the LAN
        self.port = await self._signaling.start(bind)
        self.session.set_contact(self.addresses, self.port)
        if self.mdns:
            await self._discovery.start()
            self._spawn(self.advert.run(self.port))
        self._spawn(self._run_timers())
        self._spawn(self._watch_links())
        self.audio.start()
        self.emit(Ready(self.node_id, self.name, self.port, self.addresses))
        for service in self.services:
            await service.start()

    async def stop(self) -> None:
        """Leave the room cleanly, withdraw the advert and close everything."""
        if self._stopped:
            return
        if lifecycle.in_room(self.session.phase):
            with contextlib.suppress(CommandError):
                await self.leave()
        self._stopped = self.links.stopped = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for service in self.services:
            await service.close()
        await self.mesh.close()
        await self._signaling.close()
        await self._discovery.close()
        await self.audio.stop()

    # --- commands ------------------------------------------------------------------------

    async def host(self, title: str, max_speakers: int = room.DEFAULT_MAX_SPEAKERS) -> RoomId:
        """Create a room with ``title`` and advertise it; or, if this host's last room of that
        title is still live under a co-host (we crashed), rejoin it and reclaim it."""
        if not lifecycle.may_start(self.session.phase):
            raise CommandError("already in a room; leave it first")
        self.people.entering_room()
        saved = self.hosted.room_titled(title)
        if saved is not None:
            with contextlib.suppress(CommandError):  # not live any more: host a new room
                listing = await self.directory.wait_for(saved, self.timing.resume_wait_s)
                log.warning("rejoining and reclaiming our room %r, kept going meanwhile", title)
                return await self._join(listing, reclaim=True)
        room_id = self.session.host(
            title,
            max_speakers,
            created_ms=int(time.time() * 1000),
            nonce=os.urandom(wire.NONCE_SIZE),
            now=self._clock(),
        )
        self._pump()
        return room_id

    def quitting_ends_space_for(self) -> int:
        """How many others a quit would end the Space for: we hold it and no co-host of ours
        is in it to keep it (0: quitting ends nothing, or someone keeps it going)."""
        replica = self.replica
        if replica is None or not self.is_authority:
            return 0
        state = replica.state
        if any(c in state.members for c in state.cohosts if c != self.node_id):
            return 0
        return len(state.members) - 1

    def find_room(self, ref: str) -> RoomListing:
        """The room named by ``ref``: a room id, a unique id prefix, or an exact title."""
        return self.directory.find(ref)

    @property
    def bind_address(self) -> str:
        """The address this node's servers listen on (its interface's, or every one)."""
        return self._interface or "0.0.0.0"  # noqa: S104 - a LAN service listens on the LAN

    @property
    def join_addresses(self) -> tuple[str, ...]:
        """``ADDR:PORT`` for each address others can join this node's room by."""
        return tuple(f"{address}:{self.port}" for address in self.addresses)

    async def resolve_mdns_host(self, host: str, within_s: float) -> str | None:
        """The address of a ``.local`` name on this node's network (a browser's hidden
        address), or None."""
        return await self._discovery.resolve_host(host, within_s)

    def phones_page(self) -> tuple[WebReady, str] | None:
        """Where phones join this node's room from another node that serves it (its advert
        says so), and that node's name; None if no advert of the room says."""
        replica = self.replica
        listing = self.directory.rooms.get(replica.room_id) if replica is not None else None
        if listing is None or listing.room.web is None or not listing.advert.addresses:
            return None
        web, address = listing.room.web, listing.advert.addresses[0]
        page = WebReady(
            f"http://{address}:{web.http}/", f"https://{address}:{web.https}/", web.cert_sha256
        )
        return page, listing.advert.name

    def join_address(self) -> str | None:
        """``ADDR:PORT`` that joins this node's room: its authority's signaling endpoint."""
        replica = self.replica
        if replica is None:
            return None
        authority = replica.state.authority
        if authority == self.node_id:
            return self.join_addresses[0] if self.join_addresses else None
        reach = self.links.reach(authority)
        if reach is None or not reach.addresses:
            return None
        return f"{reach.addresses[0]}:{reach.port}"

    async def join(self, ref: str, wait: float = 10.0) -> RoomId:
        """Join the room named by ``ref`` (a title, a room id or its prefix), waiting up to
        ``wait`` s for it to be discovered; or, for ``ADDR:PORT``, the room held by the node
        listening there (where multicast is filtered and mDNS finds nothing)."""
        if not lifecycle.may_start(self.session.phase):
            raise CommandError("already in a room; leave it first")
        self.people.entering_room()
        address = parse_address(ref)
        if address is not None:
            return await self._join_address(*address)
        problem = address_problem(ref)
        if problem is not None:
            raise CommandError(problem)
        listing = await self.directory.wait_for(ref, wait)
        # Our own room, kept by a co-host since we crashed: join it and take it back.
        return await self._join(listing, reclaim=listing.room.host == self.node_id)

    async def _join_address(self, host: str, port: int) -> RoomId:
        label = f"{host}:{port}"
        self._join_error = ""

        def identified(peer: NodeId) -> None:
            if peer == self.node_id:
                raise PeerError("that address is this node's own")
            self.session.join(None, peer, self._clock())
            self._pump()

        dial = self.links.dialer.dial_address(host, port, identified)
        return await self._await_join(label, dial)

    async def request(self, action: Action) -> int:
        """Ask the authority for ``action``; returns the request id a refusal will carry."""
        req_id = self.session.request(action, self._clock())
        self._pump()
        return req_id

    async def chat(self, text: str) -> None:
        """Send a chat line to the room."""
        self.session.chat(text, self._clock())
        self._pump()

    async def react(self, emoji: str) -> None:
        """Send an emoji reaction (one of the fixed set, or its name)."""
        self.session.react(emoji, self._clock())
        self._pump()

    def relay_guest(self, guest: NodeId, data: bytes) -> wire.Message:
        """As a web gateway: pass on a browser guest's own signed message (see
        :meth:`RoomSession.relay_guest`); :class:`CommandError` says why not."""
        message = self.session.relay_guest(guest, data, self._clock())
        self._pump()
        return message

    def set_web_load(self, http_port: int, https_port: int, guests: int, max_guests: int) -> None:
        """As a web gateway: tell the room where our guest page is and how busy it is."""
        self.session.set_web_load(http_port, https_port, guests, max_guests)
        self._pump()

    def contact_of(self, node: NodeId) -> wire.Contact | None:
        """Where a fellow member said it listens (and whether it serves browsers)."""
        return self.session.contact_of(node)

    def drop_guest(self, guest: NodeId) -> None:
        """As a web gateway: a guest's page went away; take it out of the room."""
        with contextlib.suppress(CommandError):
            self.session.drop_guest(guest, self._clock())
            self._pump()

    def set_volume(self, member: NodeId, gain: float) -> float:
        """Play ``member`` at ``gain`` (0 to 2; 1 is as sent) on this node only; returns it."""
        gain = min(MAX_GAIN, max(0.0, gain))
        self.audio.gains[member] = gain
        return gain

    def volume(self, member: NodeId) -> float:
        """The gain ``member`` is played at here."""
        return self.audio.gains.get(member, 1.0)

    @property
    def mic_level_db(self) -> float:
        """This node's input level now (dBFS), whether or not it is sent."""
        return self.audio.mic_level_db

    async def leave(self) -> None:
        """Leave the room (as authority: hand over to a co-host, or end the room)."""
        self.session.leave(self._clock())
        self._pump()
        await self.links.flush()
        self.session.finish_leaving()
        self._pump()

    async def _join(self, listing: RoomListing, *, reclaim: bool = False) -> RoomId:
        advert = listing.advert
        room_id = RoomId(listing.room.room_id)
        self._join_error = ""
        self.session.join(room_id, advert.node_id, self._clock(), reclaim=reclaim)
        # Dial through the dialer, so that it does not dial the same peer again meanwhile: two
        # links racing to one peer can leave the one we asked to join on closed.
        dial = None
        if advert.node_id not in self.mesh.links:
            dial = self.links.dialer.dial_now(advert.node_id, advert)
        self._pump()
        return await self._await_join(repr(listing.room.title), dial)

    async def _await_join(self, label: str, dial: asyncio.Future[Link] | None) -> RoomId:
        """Wait for the dial, then for the snapshot that makes us a member."""
        try:
            async with asyncio.timeout(self.timing.join_timeout_s):
                if dial is not None:
                    await dial
                while self._joining():
                    self._moved.clear()
                    await self._moved.wait()
        except (TimeoutError, PeerError, OSError) as exc:
            if dial is not None and not dial.done():
                dial.cancel()
            told = self._joining()  # then the session says why, in a join_failed event
            self.session.abandon_join(why(exc))
            self._pump()
            error = AlreadyTold if told else CommandError
            raise error(f"could not join {label}: {why(exc)}") from None
        except asyncio.CancelledError:
            if dial is not None:
                dial.cancel()
            raise
        if self.replica is None:
            reason = self._join_error or "the join did not complete"
            error = AlreadyTold if self._join_error else CommandError
            raise error(f"could not join {label}: {reason}")
        return self.replica.room_id

    def _joining(self) -> bool:
        phase = self.session.phase
        return phase is Phase.JOINING or (phase is Phase.REJOINING and self.session.replica is None)

    # --- the mesh's news (MeshHandler) ---------------------------------------------------

    def admit(self, peer_id: NodeId) -> str | None:
        """Who may connect: see :meth:`RoomSession.admit`; flooders are kept out a while."""
        if self.mesh.misbehaved(peer_id, self.timing.penalty_s):
            return f"dropped for misbehaving; try again in {self.timing.penalty_s:.0f} s"
        return self.session.admit(peer_id)

    def on_link_up(self, link: Link) -> None:
        """A peer's control channel is open."""
        if not self._stopped:
            self.session.link_up(link.peer_id, self._clock())
            self._pump()

    def on_link_down(self, peer_id: NodeId, reason: str) -> None:
        """A peer's link is gone."""
        if self._stopped:
            return
        flooded = self.mesh.misbehaved(peer_id, self.timing.penalty_s)
        self.session.link_down(peer_id, reason, self._clock(), misbehaved=flooded)
        self._pump()

    def on_voice(self, link: Link, data: bytes) -> None:
        """A browser guest's voice frame relayed by ``link``'s node: played only if the signed
        state names that node as the guest's gateway and the guest may speak now."""
        frame = RelayedVoice.parse(data)
        state = self.session.state
        if frame is None or state is None or state.gateway_of(frame.guest) != link.peer_id:
            link.voice_refused += 1
            return
        self._spawn(self.audio.on_rtp(frame.guest, frame))

    async def guest_voice(self, guest: NodeId, packet: Any) -> None:
        """As a gateway: our guest's RTP packet (the web gateway checked it may speak): play it
        here and relay it to every member we are linked to."""
        frame = RelayedVoice(guest, packet.sequence_number, packet.timestamp, packet.payload)
        self.mesh.send_voice(frame.encode())
        await self.audio.on_rtp(guest, frame)

    def _link_refused(self, peer: NodeId, reason: str) -> None:
        self.session.link_refused(peer, reason)
        self._pump()

    def on_message(self, link: Link, data: bytes) -> None:
        """One control message (size and rate already checked by the mesh)."""
        self.session.receive(link.peer_id, data, self._clock())
        self._pump()

    # --- pumping the session's decisions out ---------------------------------------------

    def _pump(self) -> None:
        session = self.session
        for output in session.pop_outputs():
            if isinstance(output, Send):
                self.mesh.send(output.peer, output.data)
            elif isinstance(output, Broadcast):
                self.mesh.broadcast(output.data)
            elif isinstance(output, Hangup):
                self.links.hangup(output)
        for event in session.pop_events():
            self._note(event)
            self.emit(event)
        self._follow_state(session.state is not self._last_state)
        self._last_state = session.state
        self._moved.set()
        self._wake.set()

    def _note(self, event: Event) -> None:
        """What the shell itself does about an event: the home folder, the directory."""
        if isinstance(event, Joined) and event.host:
            warning = self.hosted.remember(event.room, event.title)
            if warning is not None:
                self.emit(ErrorEvent(ErrorCode.HOSTING_NOT_SAVED, warning))
        elif isinstance(event, Ended | Left):
            if isinstance(event, Ended) and event.orphaned_by is not None:
                until = self._clock() + REJOIN_WINDOW_S
                self._orphaned = (NodeId(event.orphaned_by), until, event.room)
                for found in self.directory.listed():  # it may have restarted already
                    self._maybe_rejoin(found)
            if isinstance(event, Ended) or event.reason == "left":
                self.hosted.forget(event.room)
            self.directory.left_room(event.room)
        elif isinstance(event, ErrorEvent) and event.code == ErrorCode.JOIN_FAILED:
            self._join_error = event.reason

        elif isinstance(event, StateChanged):
            self._meet(event)
            renamed = event.action is not None and event.action.kind is ActionKind.SET_TITLE
            if renamed and event.state.host == self.node_id:  # a crash after it still reclaims
                self.hosted.remember(event.state.room_id, event.state.title)

    def _meet(self, event: StateChanged) -> None:
        """Remember the people in the room; warn of a known name with a new key (once).

        A change touches its actor and target only, so only they are looked at (a whole
        roster is read only for a snapshot): an update in a big room stays cheap."""
        roster = event.state.members
        action = event.action
        if action is not None and event.actor is not None:
            nodes = [NodeId(event.actor), *([action.target] if action.target else [])]
        else:
            nodes = list(roster)
        members = ((n, roster[n].name) for n in nodes if n in roster and n != self.node_id)
        for warning in self.people.meet_all(members):
            self.emit(ErrorEvent(ErrorCode.NAME_CLASH, warning))

    def _follow_state(self, changed: bool) -> None:
        recording = self.recorder.follow(
            self.replica.state if self.replica else None, self.is_authority
        )
        if recording is not None:
            self.emit(recording)
        if changed:
            self.advert.changed()
        self.links.ensure(drop_unneeded=changed)

    def _room_advert(self) -> RoomAdvert | None:
        return room_advert(self.replica, self.is_authority, self._web)

    def _room_now(self) -> bytes | None:
        replica = self.replica
        return replica.room_id if replica is not None and not self._stopped else None

    # --- links ---------------------------------------------------------------------------

    def directory_update(self, event: DiscoveryEvent) -> None:
        """Discovery's news: update the directory, then the links we want."""
        self.directory.on_discovery(event)
        self.links.ensure()

    # --- timers --------------------------------------------------------------------------

    async def _run_timers(self) -> None:
        """Call the session back when its next timer is due."""
        while True:
            due = self.session.next_timer()
            wait = None if due is None else max(0.0, due - self._clock())
            self._wake.clear()
            # asyncio.timeout, not wait_for: wait_for can swallow a cancel that arrives as the
            # event is set (bpo-42130), and stop() would then wait for this task for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if due is not None and self._clock() >= due:
                self.session.handle_timer(self._clock())
                self._pump()

    async def _watch_links(self) -> None:
        """Drop silent links (aiortc alone notices only after ~30 s) and redial."""
        while True:
            await asyncio.sleep(self.timing.heartbeat_s)
            self.mesh.check_liveness(
                self._clock(), self.timing.peer_timeout_s, self.links.dialer.fell_silent
            )
            self.links.ensure(drop_unneeded=True)

    def emit(self, event: Event) -> None:
        """Send an event to the watchers and the front end."""
        if isinstance(event, WebReady):  # from the web service: the advert says where
            http, https = urlsplit(event.http).port, urlsplit(event.https).port
            if http and https:
                self._web = WebPorts(http, https, event.cert_sha256)
                self.advert.changed()
        for watch in self.watchers:
            try:
                watch(event)
            except Exception:
                log.exception("an event watcher failed on %s", event.NAME)
        self.events.put_nowait(event)

    def _on_directory(self, event: Event) -> None:
        """The lobby changed; if the host whose Space died under us starts one again (its
        laptop restarted), join it again by ourselves."""
        self.emit(event)
        if isinstance(event, RoomFound):
            self._maybe_rejoin(event)

    def _maybe_rejoin(self, event: RoomFound) -> None:
        orphaned = self._orphaned
        if orphaned is None or event.host != orphaned[0] or event.room == orphaned[2]:
            return  # not that host, or the dead room's own advert (not yet expired)
        self._orphaned = None
        if self._clock() > orphaned[1] or not lifecycle.may_start(self.session.phase):
            return
        self.emit(Notice(f"{event.host_name} is back: joining {event.title!r} again."))

        async def rejoin() -> None:
            with contextlib.suppress(CommandError):  # said in the join's own error event
                await self.join(event.room.hex())

        self._spawn(rejoin())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task failed", exc_info=task.exception())
