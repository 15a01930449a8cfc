"""The node: the asyncio shell that runs one :class:`RoomSession` over the mesh and the audio.

This is the one place that reads the clock.  It pumps bytes from the mesh into the session and
the session's decisions back out (messages to send, links to close, events, its next timer), and
offers front ends one command API (:meth:`Node.host`, :meth:`Node.join`, :meth:`Node.request`,
:meth:`Node.chat`, :meth:`Node.react`, :meth:`Node.leave`) and one event stream
(:attr:`Node.events`).  Its parts, each in a module of its own: discovery and the directory
(the lobby), the advert, the link keeper and its dialer, joining, the guest relay (for the web
gateway), the people book and the home folder, the recorder, the voice, the event feed, the
session's timers, and the load gauge (what a node short of CPU gives up first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, Self

from p2pspaces.audio.devices import Sink, Source
from p2pspaces.audio.engine import FrameLog
from p2pspaces.core import lifecycle, room, wire
from p2pspaces.core.context import Broadcast, Hangup, Send
from p2pspaces.core.errors import CommandError, ErrorCode
from p2pspaces.core.events import (
    Ended,
    ErrorEvent,
    Event,
    Left,
    Ready,
    RoomFound,
    StateChanged,
    WebReady,
)
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.relays import RELAY_QUIET_HEARTBEATS
from p2pspaces.core.room import RoomState
from p2pspaces.core.session import RoomSession
from p2pspaces.core.wire import Action, RoomId
from p2pspaces.net import ice
from p2pspaces.net.discovery import Discovery, DiscoveryEvent, RoomAdvert
from p2pspaces.net.mesh import Mesh
from p2pspaces.net.signaling import SignalingServer
from p2pspaces.node.advert import AdvertKeeper, room_advert
from p2pspaces.node.config import NodeConfig
from p2pspaces.node.directory import RoomDirectory, RoomListing
from p2pspaces.node.feed import EventFeed
from p2pspaces.node.guests import GuestRelay
from p2pspaces.node.home import HostedRoom
from p2pspaces.node.joining import Joining
from p2pspaces.node.links import LinkKeeper, MeshNews
from p2pspaces.node.load import Capacity, LoadGauge
from p2pspaces.node.people import PeopleBook
from p2pspaces.node.recorder import RoomRecorder
from p2pspaces.node.timers import SessionTimers
from p2pspaces.node.voice import Voice

log = logging.getLogger(__name__)

TAKEOVER_JITTER_S = 0.2
"""Co-hosts of equal rank spread their takeover turns over this much (drawn once per node)."""


class Service(Protocol):
    """A part added to a node from above (see :attr:`Node.services`)."""

    async def start(self) -> None:
        """The node is up."""

    async def close(self) -> None:
        """The node is stopping."""


class Node:
    """One running p2pspaces peer; ``async with Node(...)`` starts it and stops it."""

    def __init__(
        self,
        identity: Identity,
        config: NodeConfig,
        *,
        source: Source | None = None,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.monotonic,
        frame_log: FrameLog | None = None,
    ) -> None:
        self.identity = identity
        self.config = config
        self.name = config.name
        self.timing = config.timing
        self.clock = clock
        """The one clock the node and its parts read (a fake one in tests)."""
        self.addresses = ice.choose_addresses(config.interface)
        self.port = 0
        self.services: list[Service] = []
        """Parts added from above (the web gateway): started once the node is up, closed
        before it stops."""
        self.feed = EventFeed(config.events_max)
        self.events = self.feed.queue
        """Everything that happens, for the front end (see :class:`EventFeed`)."""
        jitter = random.uniform(0, TAKEOVER_JITTER_S)  # noqa: S311 - spreading, not secrecy
        self.session = RoomSession(
            identity,
            self.name,
            self.timing,
            jitter_s=jitter,
            counter_base=_now_ms(),
            relays=config.relay,
            direct_listeners=config.direct_listeners,
        )
        # The mesh and the guest relay are made after the mesh's handler: looked up late.
        self.load = Capacity(self.session, LoadGauge(), lambda: self.mesh.links)
        self.news = MeshNews(
            self.session,
            self.timing,
            clock,
            self.pump,
            misbehaved=lambda peer, within: self.mesh.misbehaved(peer, within),  # noqa: PLW0108
            voice=lambda link, data: self.guests.on_voice(link, data),  # noqa: PLW0108
            capacity=self.load,
        )
        self.mesh = Mesh(identity, self.name, clock, self.news, penalty_s=self.timing.penalty_s)
        self.mesh.source = config.interface
        self.session.authority.lively = self._lively
        self.session.authority.fitness = self._fitness
        self.voice = Voice(
            self.session,
            identity,
            source,
            sink,
            clock=clock,
            emit=self.emit,
            faults=config.faults,
            frame_log=frame_log,
        )
        self.audio = self.mesh.media = self.voice.engine
        self.people = PeopleBook(config.state_dir)
        self.hosted = HostedRoom(config.state_dir)
        self.directory = RoomDirectory(
            self._on_directory,
            self._room_now,
            lambda node, name: self.people.trust(node, name).value,
        )
        self.recorder = RoomRecorder(self.audio, config.recordings_dir)
        self._signaling = SignalingServer(identity, self.name, self.mesh.on_session, clock)
        self._discovery = Discovery(
            identity, self.directory_update, config.interface, self.addresses, _now_ms()
        )
        self.advert = AdvertKeeper(
            self._discovery, self.name, self._room_advert, self.timing.reannounce_s
        )
        self.links = LinkKeeper(
            self.session,
            self.mesh,
            self.directory,
            self.timing,
            clock=clock,
            spawn=self.spawn,
            emit=self.emit,
            on_refused=self.news.refused,
            capacity=self.load,
        )
        self.joining = Joining(self)
        self.guests = GuestRelay(self, self.advert.changed)
        self._tasks: set[asyncio.Task[None]] = set()
        self.timers = SessionTimers(self.session, clock, self.pump)
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
        self.port = await self._signaling.start(self.bind_address)
        self.session.set_contact(self.addresses, self.port)
        if self.config.mdns:
            await self._discovery.start()
            self.spawn(self.advert.run(self.port))
        self.spawn(self.timers.run())
        self.spawn(self.load.gauge.run(self.clock, lambda: self.load.voice))
        self.spawn(self.links.watch(self.clock))
        self.spawn(self.voice.every_second(self.pump))
        self.audio.start()
        self.emit(Ready(self.node_id, self.name, self.port, self.addresses))
        for service in self.services:
            await service.start()

    def _lively(self, peer: NodeId) -> bool:
        """Whether ``peer``'s link was heard from lately (a relay gone quiet is replaced)."""
        link = self.mesh.links.get(peer)
        quiet = RELAY_QUIET_HEARTBEATS * self.timing.heartbeat_s
        return link is not None and self.clock() - link.last_seen <= quiet

    def _fitness(self, peer: NodeId) -> float:
        """How long, on average, between ``peer``'s messages (lower: fitter to relay)."""
        link = self.mesh.links.get(peer)
        return link.gap if link is not None else float("inf")

    async def stop(self) -> None:
        """Leave the room cleanly, withdraw the advert and close everything."""
        if self._stopped:
            return
        if lifecycle.in_room(self.session.phase):
            with contextlib.suppress(CommandError):
                await self.leave()
        self._stopped = self.links.stopped = self.news.stopped = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for service in self.services:
            await service.close()
        await self.mesh.close()
        await self._signaling.close()
        await self._discovery.close()
        await self.audio.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- commands ------------------------------------------------------------------------

    async def host(self, title: str, max_speakers: int = room.DEFAULT_MAX_SPEAKERS) -> RoomId:
        """Create a room with ``title`` and advertise it; or, if this host's last room of that
        title is still live under a co-host (we crashed), rejoin it and reclaim it."""
        if not lifecycle.may_start(self.session.phase):
            raise CommandError("already in a room; leave it first")
        self.people.entering_room()
        taken_back = await self.joining.take_back(title)
        if taken_back is not None:
            return taken_back
        room_id = self.session.host(
            title,
            max_speakers,
            created_ms=_now_ms(),
            nonce=os.urandom(wire.NONCE_SIZE),
            now=self.clock(),
        )
        self.pump()
        return room_id

    def quitting_ends_space_for(self) -> int:
        """How many others a quit would end the Space for (see :meth:`RoomState.ended_by`)."""
        replica = self.replica
        return replica.state.ended_by(self.node_id) if replica is not None else 0

    def find_room(self, ref: str) -> RoomListing:
        """The room named by ``ref``: a room id, a unique id prefix, or an exact title."""
        return self.directory.find(ref)

    @property
    def bind_address(self) -> str:
        """The address this node's servers listen on (its interface's, or every one)."""
        return self.config.interface or "0.0.0.0"  # noqa: S104 - a LAN service listens on the LAN

    @property
    def join_addresses(self) -> tuple[str, ...]:
        """``ADDR:PORT`` for each address others can join this node's room by."""
        return tuple(f"{address}:{self.port}" for address in self.addresses)

    async def resolve_mdns_host(self, host: str, within_s: float) -> str | None:
        """The address of a ``.local`` name on this node's network (a browser's hidden
        address), or None."""
        return await self._discovery.resolve_host(host, within_s)

    def join_address(self) -> str | None:
        """``ADDR:PORT`` that joins this node's room: its authority's signaling endpoint."""
        if self.replica is None:
            return None
        if self.is_authority:
            return self.join_addresses[0] if self.join_addresses else None
        return self.links.authority_address()

    async def join(self, ref: str, wait: float = 10.0) -> RoomId:
        """Join the room named by ``ref`` (a title, a room id or its prefix), waiting up to
        ``wait`` s for it to be discovered; or, for ``ADDR:PORT``, the room held by the node
        listening there (where multicast is filtered and mDNS finds nothing)."""
        return await self.joining.join(ref, wait)

    async def request(self, action: Action) -> int:
        """Ask the authority for ``action``; returns the request id a refusal will carry."""
        req_id = self.session.request(action, self.clock())
        self.pump()
        return req_id

    async def chat(self, text: str) -> None:
        """Send a chat line to the room."""
        self.session.chat(text, self.clock())
        self.pump()

    async def react(self, emoji: str) -> None:
        """Send an emoji reaction (one of the fixed set, or its name)."""
        self.session.react(emoji, self.clock())
        self.pump()

    async def leave(self) -> None:
        """Leave the room (as authority: hand over to a co-host, or end the room)."""
        self.session.leave(self.clock())
        self.pump()
        await self.links.flush()
        self.session.finish_leaving()
        self.pump()

    # --- pumping the session's decisions out ---------------------------------------------

    def pump(self) -> None:
        """Carry the session's decisions out: messages, hang-ups, events; wake the timers."""
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
        self.joining.moved()
        self.timers.wake()

    def _note(self, event: Event) -> None:
        """What the shell's parts do about an event before the front end hears it."""
        self.joining.on_event(event)
        warning = self.hosted.follow(event, self.node_id)
        if warning is not None:
            self.emit(ErrorEvent(ErrorCode.HOSTING_NOT_SAVED, warning))
        if isinstance(event, Ended | Left):
            self.directory.left_room(event.room)
        elif isinstance(event, StateChanged):
            for clash in self.people.meet_in(event, self.node_id):
                self.emit(ErrorEvent(ErrorCode.NAME_CLASH, clash))

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
        return room_advert(self.replica, self.is_authority, self.guests.web)

    def _room_now(self) -> bytes | None:
        replica = self.replica
        return replica.room_id if replica is not None and not self._stopped else None

    # --- links ---------------------------------------------------------------------------

    def directory_update(self, event: DiscoveryEvent) -> None:
        """Discovery's news: update the directory, then the links we want."""
        self.directory.on_discovery(event)
        self.links.ensure()

    def emit(self, event: Event) -> None:
        """Send an event to the watchers and the front end."""
        if isinstance(event, WebReady):  # from the web service: the advert says where
            self.guests.web_ready(event)
        self.feed.emit(event)

    def _on_directory(self, event: Event) -> None:
        """The lobby changed (a host whose Space died under us may be back)."""
        self.emit(event)
        if isinstance(event, RoomFound):
            self.joining.on_found(event)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as the node's task: cancelled at stop, its failure logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task failed", exc_info=task.exception())


def _now_ms() -> int:
    """Wall-clock milliseconds (room creation times, message counters' bases)."""
    return int(time.time() * 1000)
