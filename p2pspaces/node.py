"""The node: discovery, signaling, mesh and the room core composed into one running peer.

This is the one place that reads the clock.  Front ends (the CLI, the headless JSON mode, tests)
use the command API (:meth:`Node.host`, :meth:`Node.join`, :meth:`Node.request`,
:meth:`Node.chat`, :meth:`Node.leave`) and read one event stream (:attr:`Node.events`).

The control plane is a star around the authority (DESIGN.md section 4): a member holds one link,
to the authority; it sends signed requests, and receives a snapshot on joining, then every signed
update, verified by its own replica before it is believed.  Bad input from a peer is logged with
its reason and dropped; a peer that floods or stalls loses its link; nobody else notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pspaces.audio.devices import NullSink, SilentSource, Sink, Source
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.core import room, wire
from p2pspaces.core.errors import CommandError, Equivocation, OutOfSync, PeerError, Refused
from p2pspaces.core.identity import Identity, NodeId, short_fingerprint
from p2pspaces.core.ledger import Replica
from p2pspaces.core.room import SPEAKING_ROLES, Role
from p2pspaces.core.wire import Action, ActionKind, RoomId
from p2pspaces.events import (
    AuthorityChanged,
    Ended,
    ErrorEvent,
    Event,
    Joined,
    Left,
    Quiet,
    Ready,
    RoomFound,
    RoomLost,
    Speaking,
    StateChanged,
)
from p2pspaces.keeping import HostedRoom, RoomRecorder
from p2pspaces.net import ice
from p2pspaces.net.discovery import Discovery, DiscoveryEvent, PeerAdvert, PeerGone, RoomAdvert
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.net.signaling import SignalingServer
from p2pspaces.takeover import Reunion, Succession
from p2pspaces.talk import Talk

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
SUCCESSION_TICK_S = 0.2
PEER_TIMEOUT_S = 5.0
REJOIN_GRACE_S = 3.0
REANNOUNCE_S = 5.0
RESUME_WAIT_S = 3.0
PENALTY_S = 30.0
"""How long a peer dropped for breaking the message caps is kept out."""
JOIN_TIMEOUT_S = 15.0
RECONNECT_MAX_S = 8.0
FLUSH_S = 0.5


@dataclass(frozen=True, slots=True)
class RoomListing:
    """A room as discovery sees it."""

    advert: PeerAdvert
    room: RoomAdvert


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
    ) -> None:
        self.identity = identity
        self.name = name
        self.addresses = ice.choose_addresses(interface)
        self._interface = interface
        self._clock = clock
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.rooms: dict[RoomId, RoomListing] = {}
        self.replica: Replica | None = None
        self.port = 0
        self._adverts: dict[NodeId, PeerAdvert] = {}
        self.mesh = Mesh(identity, name, clock, self)
        self.audio = AudioEngine(
            identity.node_id,
            source or SilentSource(),
            sink or NullSink(),
            clock,
            self._on_level,
            fault_drop=drop_audio,
        )
        self.audio.may_send = lambda: self._may_speak(self.node_id)
        self.audio.allowed = self._may_speak
        self.mesh.media = self.audio
        self._dialing: set[NodeId] = set()
        self.equivocations: list[tuple[bytes, bytes]] = []
        self.hosted = HostedRoom(state_dir)
        self.recorder = RoomRecorder(self.audio, record_dir)
        self.succession = Succession(self, clock)
        self.talk = Talk(self, clock)
        self.reunion = Reunion(self)
        self._signaling = SignalingServer(identity, name, self.mesh.on_session, clock)
        self._discovery = Discovery(
            identity, self._on_discovery, interface, self.addresses, self._now_ms()
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._snapshot_waiter: asyncio.Future[None] | None = None
        self._req_id = 0
        self._advertised: RoomAdvert | None = None
        self._advert_dirty = asyncio.Event()
        self._joining: RoomId | None = None
        self._leaving = False
        self._stopped = False

    # --- life cycle ----------------------------------------------------------------------

    @property
    def node_id(self) -> NodeId:
        """This node's key."""
        return self.identity.node_id

    async def start(self) -> None:
        """Listen, advertise, browse, and emit ``ready``."""
        ice.use_addresses(self.addresses)
        bind = self._interface or "0.0.0.0"  # noqa: S104 - a LAN service listens on the LAN
        self.port = await self._signaling.start(bind)
        await self._discovery.start()
        await self._discovery.advertise(self.name, self.port, None)
        self._spawn(self._ticker())
        self._spawn(self._succession_ticker())
        self._spawn(self._advert_updater())
        self.audio.start()
        self._emit(Ready(self.node_id, self.name, self.port, self.addresses))

    async def stop(self) -> None:
        """Leave the room cleanly, withdraw the advert and close everything."""
        if self._stopped:
            return
        self._stopped = True
        if self.replica is not None:
            with contextlib.suppress(CommandError):
                await self.leave()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.mesh.close()
        await self._signaling.close()
        await self._discovery.close()
        await self.audio.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task failed", exc_info=task.exception())

    def _emit(self, event: Event) -> None:
        self.events.put_nowait(event)

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    # --- commands ------------------------------------------------------------------------

    @property
    def is_authority(self) -> bool:
        """Whether this node is its room's authority."""
        return self.replica is not None and self.replica.state.authority == self.node_id

    async def host(self, title: str, max_speakers: int = room.DEFAULT_MAX_SPEAKERS) -> RoomId:
        """Create a room with ``title`` and advertise it; or, if this host's last room of that
        title is still live under a co-host (we crashed), rejoin it and reclaim it."""
        if self.replica is not None:
            raise CommandError("already in a room; leave it first")
        resumed = await self._resume(title)
        if resumed is not None:
            return resumed
        try:
            genesis = room.genesis_record(
                self.identity,
                self.name,
                title,
                created_ms=self._now_ms(),
                nonce=os.urandom(wire.NONCE_SIZE),
                max_speakers=max_speakers,
            )
        except ValueError as exc:
            raise CommandError(f"cannot host: {exc}") from None
        self.replica = Replica.from_genesis(genesis)
        self.succession.reset()
        self.hosted.remember(self.replica.room_id, title)
        self._emit(Joined(self.replica.room_id, title, host=True))
        self._state_changed()
        return self.replica.room_id

    async def _resume(self, title: str) -> RoomId | None:
        """If we hosted a room of this title and it is still live (we crashed and a co-host
        kept it going), rejoin and reclaim it."""
        saved = self.hosted.room_titled(title)
        if saved is None:
            return None
        try:
            listing = await self._await_room(saved, RESUME_WAIT_S)
        except CommandError:
            return None  # not live any more: host a new room
        log.warning("rejoining and reclaiming our room %r, kept going while we were away", title)
        self.reunion.rejoining = True
        return await self._join(listing)

    def find_room(self, ref: str) -> RoomListing:
        """The room named by ``ref``: a room id, a unique id prefix, or an exact title."""
        ref_lower = ref.lower()
        exact = [r for r in self.rooms.values() if r.room.room_id.hex() == ref_lower]
        prefix = [r for r in self.rooms.values() if r.room.room_id.hex().startswith(ref_lower)]
        titled = [r for r in self.rooms.values() if r.room.title == ref]
        for matches in (exact, prefix if len(ref) >= 4 else [], titled):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise CommandError(f"{len(matches)} rooms match {ref!r}; use the room id")
        raise CommandError(f"no room {ref!r} on the network")

    async def join(self, ref: str, wait: float = 10.0) -> RoomId:
        """Join the room named by ``ref``, waiting up to ``wait`` s for it to be discovered."""
        if self.replica is not None:
            raise CommandError("already in a room; leave it first")
        return await self._join(await self._await_room(ref, wait))

    async def _await_room(self, ref: str, wait: float) -> RoomListing:
        """The room named by ``ref``, waiting up to ``wait`` s for discovery to find it."""
        deadline = self._clock() + wait
        while True:
            try:
                return self.find_room(ref)
            except CommandError:
                if self._clock() >= deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _join(self, listing: RoomListing) -> RoomId:
        advert = listing.advert
        self._joining = RoomId(listing.room.room_id)
        self._snapshot_waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(JOIN_TIMEOUT_S):
                await self._connect(advert)
                await self._snapshot_waiter
        except (TimeoutError, PeerError, OSError) as exc:
            self._joining = None
            self.mesh.drop(advert.node_id, "join failed")
            raise CommandError(f"could not join {listing.room.title!r}: {_why(exc)}") from None
        finally:
            self._snapshot_waiter = None
        return self._require_room().room_id

    async def _connect(self, advert: PeerAdvert) -> Link:
        errors = []
        for address in advert.addresses:
            try:
                return await self.mesh.connect(address, advert.port)
            except (PeerError, OSError, TimeoutError) as exc:
                errors.append(f"{address}: {_why(exc)}")
        raise PeerError("; ".join(errors) or "the advert has no address")

    async def request(self, action: Action) -> int:
        """Ask the authority for ``action``; returns the request id a refusal will carry."""
        replica = self._require_room()
        self._req_id += 1
        request = wire.Request(replica.room_id, self._req_id, action)
        if self.is_authority:
            self._handle_request(self.node_id, request)
        else:
            self._send_to_authority(wire.seal_bytes(self.identity, request))
        return self._req_id

    async def chat(self, text: str) -> None:
        """Send a chat line to the room."""
        try:
            data = self.talk.say(text)
        except ValueError as exc:
            raise CommandError(f"cannot send that chat line: {exc}") from None
        self._send_talk(data)

    async def react(self, emoji: str) -> None:
        """Send an emoji reaction (one of the fixed set, or its name)."""
        self._send_talk(self.talk.react(emoji))

    def _send_talk(self, data: bytes) -> None:
        if self.is_authority:
            _, message = wire.open_signed_bytes(data, wire.Message, self.node_id)
            if isinstance(message, wire.Chat | wire.Reaction):
                self.talk.relay(self.node_id, data, message)
        else:
            self._send_to_authority(data)

    def request_now(self, action: Action) -> None:
        """As the authority: issue our own action at once (refusals become error events)."""
        try:
            self._issue(self.node_id, action)
        except Refused as exc:
            self._emit(ErrorEvent("refused", exc.reason))

    def room_id_or_fail(self) -> RoomId:
        """The room this node is in, or :class:`CommandError`."""
        return self._require_room().room_id

    def emit(self, event: Event) -> None:
        """Queue an event for the front end."""
        self._emit(event)

    def refuse(self, actor: NodeId, code: str, reason: str, req_id: int = 0) -> None:
        """Tell ``actor`` (or ourselves) that something was refused."""
        self._refuse(actor, code, reason, req_id)

    async def leave(self) -> None:
        """Leave the room (as authority: hand over to a co-host, or end the room)."""
        replica = self._require_room()
        room_id = replica.room_id
        self._leaving = True
        try:
            await self.request(Action(ActionKind.LEAVE))
            await self._flush()
        finally:
            self._leaving = False
        self._close_room()
        self.hosted.forget(room_id)
        self._emit(Left(room_id, "left"))

    def _require_room(self) -> Replica:
        if self.replica is None:
            raise CommandError("not in a room")
        return self.replica

    def _send_to_authority(self, data: bytes) -> None:
        replica = self._require_room()
        if not self.mesh.send(replica.state.authority, data):
            raise CommandError("not connected to the room's authority")

    async def _flush(self) -> None:
        """Give queued control messages a moment to leave before links close."""
        step = 0.02
        for _ in range(int(FLUSH_S / step)):
            if not any(link.channel.bufferedAmount for link in self.mesh.links.values()):
                break
            await asyncio.sleep(step)
        await asyncio.sleep(0.05)

    def _close_room(self) -> None:
        self.replica = None
        self._joining = None
        self._keep_recording()
        for peer in list(self.mesh.links):
            self.mesh.drop(peer, "left the room")
        self._advert_dirty.set()

    # --- discovery -----------------------------------------------------------------------

    def _on_discovery(self, event: DiscoveryEvent) -> None:
        if isinstance(event, PeerGone):
            advert = self._adverts.pop(event.node_id, None)
            if advert is not None and advert.room is not None:
                self._room_gone(RoomId(advert.room.room_id), event.node_id)
            return
        advert = event.advert
        old = self._adverts.get(advert.node_id)
        self._adverts[advert.node_id] = advert
        if (
            old is not None
            and old.room is not None
            and (advert.room is None or old.room.room_id != advert.room.room_id)
        ):
            self._room_gone(RoomId(old.room.room_id), advert.node_id)
        if advert.room is not None:
            changed = old is not None and old.room is not None
            if changed and old == advert:
                return
            room_id = RoomId(advert.room.room_id)
            self.rooms[room_id] = RoomListing(advert, advert.room)
            self._meet_rival(advert)
            info = advert.room
            self._emit(
                RoomFound(
                    room_id,
                    info.title,
                    advert.node_id,
                    advert.name,
                    info.speakers,
                    info.listeners,
                    changed,
                )
            )

    def _meet_rival(self, advert: PeerAdvert) -> None:
        """Another node advertises our room while we hold it (a partition healed): link to it,
        so that heartbeats tell which branch has the higher epoch."""
        replica = self.replica
        if (
            replica is not None
            and self.is_authority
            and advert.room is not None
            and advert.room.room_id == replica.room_id
            and advert.node_id not in self.mesh.links
            and advert.node_id not in self._dialing
        ):
            self._dialing.add(advert.node_id)
            self._spawn(self._dial(advert.node_id, advert))

    def _room_gone(self, room_id: RoomId, node_id: NodeId) -> None:
        """A node stopped advertising a room; it is gone unless another node (a co-host that
        took over) advertises it now."""
        listing = self.rooms.get(room_id)
        if listing is not None and listing.advert.node_id == node_id:
            del self.rooms[room_id]
            self._emit(RoomLost(room_id))

    async def _advert_updater(self) -> None:
        """Keep the mDNS advert in step with the room, at most once a second.

        A room's authority also re-announces every :data:`REANNOUNCE_S` seconds: after a
        partition heals, the other side's caches may have expired our records, and browsers
        back off their own queries, so without this the two halves could stay strangers.
        """
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advert_dirty.wait(), REANNOUNCE_S)
            self._advert_dirty.clear()
            wanted = self._room_advert()
            if wanted != self._advertised or wanted is not None:
                self._advertised = wanted
                await self._discovery.advertise(self.name, self.port, wanted)
            await asyncio.sleep(1.0)

    def _room_advert(self) -> RoomAdvert | None:
        if not self.is_authority or self.replica is None or self.replica.state.ended:
            return None
        state = self.replica.state
        speakers = sum(1 for m in state.members.values() if m.role != Role.LISTENER)
        return RoomAdvert(state.room_id, state.title, speakers, len(state.members) - speakers)

    # --- the mesh's news -----------------------------------------------------------------

    def admit(self, peer_id: NodeId) -> str | None:
        """Who may connect: anyone not blocked to the authority (to join); to a member, only
        fellow members.  Every node enforces blocks, not only the authority."""
        replica = self.replica
        if replica is None:
            return "not in a room"
        if peer_id in replica.state.blocked:
            return "blocked from this room"
        if self.mesh.misbehaved(peer_id, PENALTY_S):
            return f"dropped for flooding; try again in {PENALTY_S:.0f} s"
        if not self.is_authority and peer_id not in replica.state.members:
            return "not a member of this room"
        return None

    def on_link_up(self, link: Link) -> None:
        """Ask to join once the link to the room's authority is up."""
        if self._joining is not None and self.replica is None:
            action = Action(ActionKind.JOIN, text=self.name)
            link.send(wire.seal_bytes(self.identity, wire.Request(self._joining, 0, action)))

    def on_link_down(self, peer_id: NodeId, reason: str) -> None:
        """A member whose link died is dropped from the roster by the authority, unless it
        comes back within a grace period (a Wi-Fi hiccup must not cost a speaker the stage)."""
        replica = self.replica
        if replica is None or self._stopped:
            return
        if self.is_authority and peer_id in replica.state.members:
            if self.mesh.misbehaved(peer_id, PENALTY_S):
                self._issue(self.node_id, Action(ActionKind.DROP, peer_id))
            else:
                self._spawn(self._drop_unless_back(peer_id))
        elif peer_id == replica.state.authority:
            self._emit(ErrorEvent("authority_lost", f"lost the room's authority: {reason}"))
            self._spawn(self._reconnect(replica.room_id))

    def on_message(self, link: Link, data: bytes) -> None:
        """Dispatch one control message; a bad one is logged and dropped."""
        self.succession.heard(link.peer_id)
        try:
            message = wire.decode(data)
            if isinstance(message, wire.Signed):
                self._on_signed(link, message, data)
            elif isinstance(message, wire.Error):
                self._emit(ErrorEvent(message.code, message.reason, message.req_id))
            elif isinstance(message, wire.Resync) and self.is_authority:
                self._send_snapshot(link.peer_id)
            else:
                raise PeerError(f"unexpected {message.TYPE}")
        except Equivocation as exc:
            # Proof that the authority signed two different changes for one (epoch, seq): keep
            # both signed envelopes, warn the user, and refuse the second.
            self.equivocations.append((exc.first, exc.second))
            log.error("the room's authority equivocated: %s", exc.reason)
            self._emit(ErrorEvent("equivocation", exc.reason))
        except PeerError as exc:
            log.warning("refused a message from %s: %s", link.label, exc.reason)

    def _on_signed(self, link: Link, envelope: wire.Signed, data: bytes) -> None:
        inner = wire.open_signed(envelope)
        if isinstance(inner, wire.Request):
            self._on_request(link, envelope, inner)
        elif isinstance(inner, wire.Update):
            self._on_update(link, data)
        elif isinstance(inner, wire.Snapshot):
            self._on_snapshot(link, data)
        elif isinstance(inner, wire.Heartbeat):
            self._on_heartbeat(link, envelope, inner)
        elif isinstance(inner, wire.Chat | wire.Reaction):
            self.talk.received(link, envelope, inner, data)
        elif isinstance(inner, wire.Takeover):
            self.succession.on_claim(link, data)
        elif isinstance(inner, wire.VoteRequest):
            self.succession.on_vote_request(link, data)
        elif isinstance(inner, wire.Vote):
            self.succession.on_vote(envelope, inner, data)
        else:
            raise PeerError(f"unexpected signed {inner.TYPE}")

    # --- authority side ------------------------------------------------------------------

    def _on_request(self, link: Link, envelope: wire.Signed, request: wire.Request) -> None:
        if envelope.signer != link.peer_id:
            raise PeerError("request signed by someone other than the link's peer")
        if not self.is_authority:
            raise PeerError("request sent to a node that is not the authority")
        self._handle_request(link.peer_id, request)

    def _handle_request(self, actor: NodeId, request: wire.Request) -> None:
        replica = self._require_room()
        if request.room_id != replica.room_id:
            self._refuse(actor, "wrong_room", "not this room", request.req_id)
            return
        kind = request.action.kind
        if kind is ActionKind.JOIN and actor in replica.state.members:
            self._send_snapshot(actor)  # a member reconnecting: give it the current state
            return
        try:
            self._issue(actor, request.action)
        except Refused as exc:
            self._refuse(actor, "refused", exc.reason, request.req_id)
            if kind is ActionKind.JOIN:
                self._drop_soon(actor, f"join refused: {exc.reason}")

    def _issue(self, actor: NodeId, action: Action) -> None:
        """Authorise, apply, sign and broadcast one change (raises Refused)."""
        replica = self._require_room()
        update = replica.issue(self.identity, actor, action)
        if action.kind is ActionKind.JOIN:
            self._send_snapshot(actor)
            for peer, link in self.mesh.links.items():
                if peer != actor:
                    link.send(update)
        else:
            self.mesh.broadcast(update)
        state = replica.state
        for peer in list(self.mesh.links):
            if peer not in state.members and peer != state.authority:
                self._drop_soon(peer, "no longer a member")
        self._applied(action)

    async def _drop_unless_back(self, peer: NodeId) -> None:
        await asyncio.sleep(REJOIN_GRACE_S)
        replica = self.replica
        if (
            replica is not None
            and self.is_authority
            and peer in replica.state.members
            and peer not in self.mesh.links
        ):
            with contextlib.suppress(Refused):
                self._issue(self.node_id, Action(ActionKind.DROP, peer))

    def _drop_soon(self, peer: NodeId, reason: str) -> None:
        """Drop a link once what was just sent to it (an update, a refusal) has gone out."""

        async def later() -> None:
            await asyncio.sleep(FLUSH_S)
            self.mesh.drop(peer, reason)

        self._spawn(later())

    def _send_snapshot(self, peer: NodeId) -> None:
        replica = self._require_room()
        self.mesh.send(peer, replica.snapshot(self.identity))

    def _refuse(self, actor: NodeId, code: str, reason: str, req_id: int) -> None:
        if actor == self.node_id:
            self._emit(ErrorEvent(code, reason, req_id))
        else:
            self.mesh.send(actor, wire.encode(wire.Error(code, reason[: wire.REASON_MAX], req_id)))

    # --- member side ---------------------------------------------------------------------

    def _on_update(self, link: Link, data: bytes) -> None:
        # Any link may carry an update: what counts is the authority's signature, which the
        # replica checks along with the epoch, seq and hash chain.
        replica = self.replica
        if replica is None:
            raise PeerError("update while not in a room")
        try:
            update = replica.receive(data)
        except OutOfSync as exc:
            log.info("out of step with the room (%s); asking for a snapshot", exc.reason)
            resync = wire.Resync(replica.room_id, replica.state.seq)
            self.mesh.send(replica.state.authority, wire.encode(resync))
            return
        self._applied(update.action)

    def _on_snapshot(self, link: Link, data: bytes) -> None:
        expected = self._joining or (self.replica.room_id if self.replica else None)
        if expected is None:
            raise PeerError("snapshot while not joining a room")
        fresh = Replica.from_snapshot(data, expected)
        if fresh.state.authority != link.peer_id:
            raise PeerError("snapshot from a node that is not the room's authority")
        if self.replica is not None and fresh.state.epoch < self.replica.state.epoch:
            raise Refused("snapshot from an older epoch")
        first = self.replica is None
        old = self.replica.state if self.replica is not None else None
        newer_epoch = old is not None and fresh.state.epoch > old.epoch
        if old is not None and newer_epoch and old.authority == self.node_id:
            self.reunion.superseded(old, fresh.state)
        self.replica = fresh
        self._joining = None
        if first:
            self.succession.reset()
        elif newer_epoch:
            self.authority_changed()
        if first:
            self._emit(Joined(fresh.room_id, fresh.state.title, host=False))
            if self._snapshot_waiter is not None and not self._snapshot_waiter.done():
                self._snapshot_waiter.set_result(None)
        self._applied(None)

    def _applied(self, action: Action | None) -> None:
        """Report a new state; end or leave the room if the change says so."""
        replica = self._require_room()
        state = replica.state
        self._state_changed()
        self.reunion.after_change(state)
        if state.ended:
            left = action is not None and action.kind is ActionKind.LEAVE
            reason = (
                "the host left and no co-host could take over"
                if left
                else "the host ended the Space"
            )
            self._emit(Ended(state.room_id, reason))
            self.hosted.forget(state.room_id)
            if self.is_authority:
                self._spawn(self._close_after_flush())
            else:
                self._close_room()
        elif self.reunion.rejoining and self.node_id not in state.members:
            return  # superseded after a partition: our join request is on its way
        elif self.node_id not in state.members and not self._leaving:
            how = "blocked" if self.node_id in state.blocked else "removed"
            self._emit(Left(state.room_id, f"{how} from the room"))
            self._close_room()

    async def _close_after_flush(self) -> None:
        await self._flush()
        self._close_room()

    def _on_heartbeat(self, link: Link, envelope: wire.Signed, beat: wire.Heartbeat) -> None:
        replica = self.replica
        if replica is None or envelope.signer != link.peer_id:
            return
        self.reunion.heartbeat(link, beat)
        is_authority = link.peer_id == replica.state.authority
        behind = beat.epoch == replica.state.epoch and beat.seq > replica.state.seq
        forked = beat.seq == replica.state.seq and beat.state_hash != replica.hash()
        if is_authority and (behind or forked):
            log.warning("out of step with the authority's heartbeat; asking for a snapshot")
            link.send(wire.encode(wire.Resync(replica.room_id, replica.state.seq)))

    async def _reconnect(self, room_id: RoomId) -> None:
        """Retry a lost authority with backoff while its room is still advertised."""
        delay = 0.25
        while self.replica is not None and self.replica.room_id == room_id:
            listing = self.rooms.get(room_id)
            if listing is not None:
                try:
                    await self._connect(listing.advert)
                    action = Action(ActionKind.JOIN, text=self.name)
                    self._send_to_authority(
                        wire.seal_bytes(self.identity, wire.Request(room_id, 0, action))
                    )
                    return
                except (PeerError, OSError, TimeoutError, CommandError) as exc:
                    log.info("reconnecting to the room failed: %s", _why(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    # --- timers --------------------------------------------------------------------------

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self.mesh.check_liveness(self._clock(), PEER_TIMEOUT_S)
            self._ensure_links()
            replica = self.replica
            if replica is not None:
                state = replica.state
                beat = wire.Heartbeat(state.room_id, state.epoch, state.seq, replica.hash())
                self.mesh.broadcast(wire.seal_bytes(self.identity, beat))

    def _keep_recording(self) -> None:
        replica = self.replica
        event = self.recorder.follow(replica.state if replica else None, self.is_authority)
        if event is not None:
            self._emit(event)

    async def _succession_ticker(self) -> None:
        while True:
            await asyncio.sleep(SUCCESSION_TICK_S)
            try:
                self.succession.tick()
            except PeerError as exc:
                log.warning("takeover attempt failed: %s", exc.reason)

    def authority_changed(self) -> None:
        """Another node (or this one) holds the room now: tell, re-advertise, tidy the roster."""
        replica = self._require_room()
        state = replica.state
        self.succession.reset()
        who = state.members.get(state.authority)
        name = who.name if who else short_fingerprint(state.authority)
        self._emit(AuthorityChanged(state.room_id, state.epoch, state.authority, name))
        self._state_changed()
        if not self.is_authority:
            advert = self._adverts.get(state.authority)
            if state.authority not in self.mesh.links and advert is not None:
                self._spawn(self._dial(state.authority, advert))
            return
        # The authority we replaced is gone: take it off the roster now rather than when its
        # link times out (it may have timed out already, before we were in charge).
        gone = [
            member
            for member in state.authority_set()
            if member in state.members and member != self.node_id and member not in self.mesh.links
        ]
        for member in gone:
            with contextlib.suppress(Refused):
                self._issue(self.node_id, Action(ActionKind.DROP, member))

    def _state_changed(self) -> None:
        if self.replica is not None:
            self._emit(StateChanged(self.replica.state))
            self._ensure_links()
        self._keep_recording()
        self._advert_dirty.set()

    # --- audio ---------------------------------------------------------------------------

    def _may_speak(self, node: bytes) -> bool:
        replica = self.replica
        return replica is not None and replica.state.may_speak(node)

    def _on_level(self, member: bytes, speaking: bool, level_db: float) -> None:
        replica = self.replica
        if replica is None:
            return
        who = replica.state.members.get(NodeId(member))
        name = who.name if who else short_fingerprint(member)
        if speaking:
            self._emit(Speaking(replica.room_id, member, name, level_db))
        else:
            self._emit(Quiet(replica.room_id, member, name))

    def _wanted_links(self) -> set[NodeId]:
        """The audio plane: every speaker (and the authority) links with every member;
        listeners need no links to each other (DESIGN.md section 4)."""
        replica = self._require_room()
        state = replica.state
        voices = {n for n, m in state.members.items() if m.role in SPEAKING_ROLES}
        voices.add(state.authority)
        if self.node_id in voices:
            return set(state.members) - {self.node_id}
        return voices - {self.node_id}

    def _ensure_links(self) -> None:
        """Dial the peers this node should hold links with (the smaller key dials), and drop
        links it no longer needs.  Members always dial the authority themselves (join)."""
        replica = self.replica
        if replica is None or self._stopped:
            return
        wanted = self._wanted_links()
        authority = replica.state.authority
        for peer in list(self.mesh.links):
            if peer not in wanted and peer != authority and not self.is_authority:
                self.mesh.drop(peer, "no longer needed for audio")
        for peer in wanted - set(self.mesh.links) - self._dialing:
            if authority in (peer, self.node_id) or self.node_id > peer:
                continue
            advert = self._adverts.get(peer)
            if advert is not None:
                self._dialing.add(peer)
                self._spawn(self._dial(peer, advert))

    async def _dial(self, peer: NodeId, advert: PeerAdvert) -> None:
        try:
            await self._connect(advert)
        except (PeerError, OSError, TimeoutError) as exc:
            log.info("audio link to %s failed (will retry): %s", short_fingerprint(peer), _why(exc))
        finally:
            self._dialing.discard(peer)


def _why(exc: BaseException) -> str:
    if isinstance(exc, PeerError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
