"""The web gateway's connection: any node of a Space serves it to the browsers near it
(docs/DESIGN.md 5b).

One aiohttp application, served twice: plain HTTP (any phone can open it; listen, chat, raise a
hand) and HTTPS with the node's self-signed certificate (the browser's microphone needs a
secure page).  Each browser tab is a :class:`Guest`: a WebSocket carries the page's own signed
messages in (:meth:`GuestRelay.relay` passes them on as signed; the gateway cannot forge them)
and the room's news out as JSON; a WebRTC connection (aiortc, no ICE servers) carries the
room's audio to the page and, once the guest may speak, its voice in.

What a page may send, how it proves its key and the table of guests are in
:mod:`p2pspaces.web.protocol` (no I/O, tested in memory); every message a page receives is made
in :mod:`p2pspaces.web.page`.  This module does the sockets, the timers and the audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from p2pspaces.audio.engine import AudioEngine
from p2pspaces.audio.fanout import PacketTrack
from p2pspaces.audio.opus import Pcm
from p2pspaces.core.errors import CommandError, ErrorCode
from p2pspaces.core.events import (
    ChatReceived,
    Ended,
    Event,
    GuestRefused,
    Left,
    Quiet,
    ReactionReceived,
    Speaking,
    StateChanged,
)
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.ledger import Replica
from p2pspaces.core.limits import TokenBucket
from p2pspaces.core.room import RoomState
from p2pspaces.net.receive import take_rtp
from p2pspaces.node.feed import EventFeed
from p2pspaces.node.guests import GuestRelay, RtpPacket
from p2pspaces.web import page
from p2pspaces.web.cert import Certificate, load_or_create
from p2pspaces.web.mixer import GuestMixer
from p2pspaces.web.page import WebInfo, in_words
from p2pspaces.web.protocol import (
    BINARY_MAX,
    DOMAIN_WEB,
    TEXT_MAX,
    Bye,
    Gone,
    GuestBook,
    Heard,
    Hello,
    Offer,
    PageCode,
    PageError,
    Volume,
    parse_frame,
    proven_key,
)
from p2pspaces.web.sdp import HiddenCandidate, without_mdns_candidates
from p2pspaces.web.settings import (
    DEFAULT_GRACE_S,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_MAX_GUESTS,
)

__all__ = ["BINARY_MAX", "DOMAIN_WEB", "STATIC", "Guest", "ServedNode", "WebGateway", "WebInfo"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
FRAME_RATE = 20.0
FRAME_BURST = 40.0
HEARTBEAT_S = 5.0
"""WebSocket pings: a page that vanished without closing (a phone gone off the Wi-Fi) is
noticed within one and a half of these, then keeps its place for the grace."""
RECENT_CHAT = 30
LOAD_GAP_S = 2.0
"""A gateway tells the room its guest count at most this often (each costs every member a
relayed contact)."""
MDNS_WAIT_S = 1.0
"""How long the page's hidden addresses are looked up (the answer is not held back by it)."""
STATE_DELAY_S = 0.05
"""State pushes to pages are coalesced over this long (a burst of changes sends one)."""

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Permissions-Policy": "microphone=(self), camera=()",
}


class ServedNode(Protocol):
    """What the gateway needs from the node it serves (:class:`~p2pspaces.node.Node`)."""

    name: str
    addresses: tuple[str, ...]
    clock: Callable[[], float]
    feed: EventFeed
    audio: AudioEngine
    guests: GuestRelay

    @property
    def node_id(self) -> NodeId: ...

    @property
    def replica(self) -> Replica | None: ...

    async def resolve_mdns_host(self, host: str, within_s: float) -> str | None: ...


@dataclass(eq=False)
class Guest:
    """One browser tab: its socket, its key once proven, its WebRTC connection."""

    ws: web.WebSocketResponse
    secure: bool
    challenge: bytes = field(default_factory=lambda: os.urandom(32))
    key: NodeId | None = None
    pc: RTCPeerConnection | None = None
    track: PacketTrack | None = None
    bucket: TokenBucket = field(default_factory=lambda: TokenBucket(FRAME_RATE, FRAME_BURST))
    bye: bool = False
    """The page said it is closing (``pagehide``): its place goes at once, not after the grace."""

    @property
    def label(self) -> str:
        return short_fingerprint(self.key) if self.key else "an unproven page"

    async def send(self, message: page.Message) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message))


class WebGateway:
    """Serves the room this node is in to browsers; see the module's docstring."""

    def __init__(
        self,
        node: ServedNode,
        folder: Path,
        *,
        http_port: int = DEFAULT_HTTP_PORT,
        https_port: int = DEFAULT_HTTPS_PORT,
        max_guests: int = DEFAULT_MAX_GUESTS,
        grace_s: float = DEFAULT_GRACE_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.node = node
        self.folder = folder
        self.book: GuestBook[Guest] = GuestBook(node.node_id, max_guests, grace_s)
        self._ports = (http_port, https_port)
        self._clock = clock or node.clock
        self._runners: list[web.AppRunner] = []
        self._state_due = False
        self.mixer = GuestMixer(node.node_id)
        self.info: WebInfo | None = None
        self.cert: Certificate | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ports_bound = (0, 0)
        self._load_due = False
        self._told_load = False
        self._grace_timers: dict[NodeId, asyncio.TimerHandle] = {}
        self.recent: deque[page.Message] = deque(maxlen=RECENT_CHAT)
        """The last chat lines, for a page that opens (or moves to the secure page) midway."""
        self.speaking: set[bytes] = set()
        """Who is speaking now (from the node's level meters), for pages that open midway."""

    @property
    def guests(self) -> dict[NodeId, Guest]:
        """Proven pages by guest key."""
        return self.book.guests

    @property
    def max_guests(self) -> int:
        return self.book.max_guests

    @property
    def serving(self) -> int:
        """How many guests this gateway serves now."""
        return self.book.serving

    # --- life cycle ----------------------------------------------------------------------

    async def start(self, bind: str) -> WebInfo:
        """Listen for browsers on ``bind`` (HTTP and HTTPS); returns the addresses."""
        addresses = tuple(self.node.addresses)
        self.cert = load_or_create(self.folder, addresses, self.node.name)
        app = web.Application(client_max_size=TEXT_MAX)
        app.router.add_get("/", self._index)
        app.router.add_get("/ws", self._socket)
        app.router.add_get("/info", self._info)
        app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
        app.on_response_prepare.append(_secure_headers)
        ports = []
        for port, tls in zip(self._ports, (None, self.cert.context()), strict=True):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            self._runners.append(runner)
            ports.append(await _listen(runner, bind, port, tls))
        host = addresses[0] if addresses else "127.0.0.1"
        self.info = WebInfo(
            f"http://{host}:{ports[0]}/", f"https://{host}:{ports[1]}/", self.cert.sha256
        )
        self.node.feed.watchers.append(self.on_event)
        self.node.audio.tap = self._tap
        meters = self.node.audio.meters
        self.speaking = {member for member, meter in meters.items() if meter.speaking}
        self._ports_bound = (ports[0], ports[1])
        self._tell_load()
        log.info("web: serving %s and %s", self.info.http, self.info.https)
        return self.info

    async def close(self) -> None:
        """Close every page and stop listening."""
        if self.on_event in self.node.feed.watchers:
            self.node.feed.watchers.remove(self.on_event)
        self.node.audio.tap = None
        for timer in self._grace_timers.values():
            timer.cancel()
        self._grace_timers.clear()
        self.book.clear_graces()
        for guest in list(self.book.pages):
            await self._close_guest(guest, "the node serving this page stopped")
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    # --- HTTP ----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self._room_info())

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=TEXT_MAX, heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        guest = Guest(ws, secure=request.secure)
        full = self.book.full()
        if full is not None:
            await guest.send(page.full(full, self.other_gateways()))
            await ws.close()
            return ws
        self.book.opened(guest)
        try:
            node = self.node
            await guest.send(
                page.welcome(guest.challenge, node.node_id, node.name, self._room_info())
            )
            async for message in ws:
                if not guest.bucket.take(self._clock()):
                    await self._close_guest(guest, "too many messages; reload the page")
                    break
                if message.type == WSMsgType.TEXT:
                    await self._on_text(guest, message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._on_signed(guest, message.data)
                else:
                    break
        finally:
            await self._page_gone(guest)
        return ws

    def _room_info(self) -> page.Message:
        return page.room_info(
            self._state(), self.info, self.serving, self.max_guests, self.other_gateways()
        )

    def other_gateways(self) -> list[page.Message]:
        """Other nodes of this room that serve pages and have room for guests."""
        return page.other_gateways(self._state(), self.node.node_id, self.node.guests.contact_of)

    def _tell_load(self) -> None:
        """Tell the room how busy this gateway is (at most every LOAD_GAP_S)."""
        if self._load_due:
            return
        self._load_due = True

        def tell() -> None:
            self._load_due = False
            http, https = self._ports_bound
            self.node.guests.set_load(http, https, self.serving, self.max_guests)

        asyncio.get_running_loop().call_later(LOAD_GAP_S if self._told_load else 0, tell)
        self._told_load = True

    # --- from the page -------------------------------------------------------------------

    async def _on_text(self, guest: Guest, data: str) -> None:
        try:
            frame = parse_frame(data, proven=guest.key is not None)
            if isinstance(frame, Hello):
                await self._on_hello(guest, proven_key(frame, guest.challenge, self.node.node_id))
        except PageError as exc:
            await guest.send(page.error(exc.code, exc.reason))
            return
        if guest.key is None:
            return
        if isinstance(frame, Bye):
            guest.bye = True  # the tab is closing: no grace to wait for it
        elif isinstance(frame, Offer):
            await self._on_offer(guest, guest.key, frame.sdp)
        elif isinstance(frame, Volume):
            self.mixer.set_volume(guest.key, frame.source, frame.gain)
        elif isinstance(frame, Heard) and self.book.may_report(guest.key, self._clock()):
            self.node.guests.heard(guest.key, frame.level_db, self.speaking)

    async def _on_hello(self, guest: Guest, key: NodeId) -> None:
        old = self.book.proven(guest, key)
        if old is not None:
            await self._close_guest(
                old, "this Space is open in another tab or page", code="elsewhere"
            )
        self._tell_load()
        log.info("web: guest %s connected (%s)", guest.label, "https" if guest.secure else "http")
        await self._push_state(guest)
        for line in list(self.recent):
            await guest.send(line)

    async def _on_signed(self, guest: Guest, data: bytes) -> None:
        if guest.key is None or len(data) > BINARY_MAX:
            await guest.send(page.error(PageCode.BAD_MESSAGE, "not accepted"))
            return
        try:
            self.node.guests.relay(guest.key, data)
        except CommandError as exc:
            await guest.send(page.error(ErrorCode.REFUSED, in_words(str(exc))))

    async def _on_offer(self, guest: Guest, key: NodeId, sdp: str) -> None:
        if guest.pc is not None:
            await guest.pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        guest.pc = pc
        track = guest.track = PacketTrack()
        try:
            usable, hidden = without_mdns_candidates(sdp)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=usable, type="offer"))
            pc.addTrack(track)
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio":
                    take_rtp(transceiver.receiver, functools.partial(self._guest_rtp, key))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises many kinds on a bad SDP: a page's bad input
            log.info("web: unusable offer from %s: %s", guest.label, type(exc).__name__)
            await guest.send(page.error(PageCode.BAD_OFFER, "unusable offer"))
            await pc.close()
            guest.pc = guest.track = None
            return
        await guest.send(page.answer(pc.localDescription.sdp))
        if hidden:
            self._spawn(self._unhide(guest, pc, hidden))

    async def _unhide(
        self, guest: Guest, pc: RTCPeerConnection, hidden: list[HiddenCandidate]
    ) -> None:
        """Look up the page's ``.local`` candidates with the node's mDNS and hand over those
        that resolve (see :func:`~p2pspaces.web.sdp.without_mdns_candidates`)."""
        names = list(dict.fromkeys(c.host for c in hidden))  # a name per address, not candidate
        lookups = [self.node.resolve_mdns_host(name, MDNS_WAIT_S) for name in names]
        found_at = dict(zip(names, await asyncio.gather(*lookups), strict=True))
        for candidate in hidden:
            address = found_at[candidate.host]
            if address is None or guest.pc is not pc:
                continue
            found = candidate_from_sdp(candidate.at(address).removeprefix("candidate:"))
            found.sdpMLineIndex = candidate.index
            await pc.addIceCandidate(found)
            log.info("web: %s's hidden address %s is %s", guest.label, candidate.host, address)

    async def _guest_rtp(self, guest: NodeId, packet: RtpPacket, arrival_time_ms: int = 0) -> None:
        """The guest's voice: played here and sent on to the room only while the signed state
        shows it an unmuted speaker served by us."""
        state = self._state()
        if state is None or state.gateway_of(guest) != self.node.node_id:
            return
        if state.may_speak(guest):
            await self.node.guests.voice(guest, packet)

    # --- to the page ---------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The node's news, for the pages (a node watcher: synchronous, schedules sends)."""
        if isinstance(event, StateChanged):
            self._state_changed(event)
        elif isinstance(event, ChatReceived):
            self.recent.append(page.chat(event))
            self._to_all(page.chat(event))
        elif isinstance(event, ReactionReceived):
            self._to_all(page.reaction(event))
        elif isinstance(event, Speaking | Quiet):
            on = isinstance(event, Speaking)
            if on:
                self.speaking.add(event.member)
            else:
                self.speaking.discard(event.member)
            self._to_all(page.speaking(event.member, on))
        elif isinstance(event, GuestRefused):
            guest = self.guests.get(NodeId(event.guest))
            if guest is not None:
                self._spawn(guest.send(page.error(event.code, in_words(event.reason))))
        elif isinstance(event, Ended | Left):
            reason = (
                "the Space ended"
                if isinstance(event, Ended)
                else "the node serving this page left the Space"
            )
            for guest in list(self.book.pages):
                self._spawn(self._close_guest(guest, reason, out=True))

    def _state_changed(self, event: StateChanged) -> None:
        for guest, reason, code in self.book.put_out(event):
            self._spawn(self._close_guest(guest, reason, out=True, code=code))
        if not self._state_due:
            self._state_due = True
            asyncio.get_running_loop().call_later(STATE_DELAY_S, self._push_all)

    def _push_all(self) -> None:
        self._state_due = False
        view = self._room_view()  # once for every page: only "me" differs between them
        for guest in list(self.guests.values()):
            self._spawn(guest.send(page.for_page(view, self._state(), guest.key)))

    async def _push_state(self, guest: Guest) -> None:
        await guest.send(page.for_page(self._room_view(), self._state(), guest.key))

    def _room_view(self) -> page.Message:
        return page.room_view(
            self._state(), self.node.node_id, self.speaking, self.serving, self.other_gateways()
        )

    def _to_all(self, message: page.Message) -> None:
        for guest in list(self.guests.values()):
            self._spawn(guest.send(message))

    # --- audio to the pages --------------------------------------------------------------

    def _tap(self, frames: list[tuple[bytes, Pcm]], own: Pcm | None) -> None:
        listening = {key: g.track for key, g in self.guests.items() if g.track is not None}
        if listening:
            self.mixer.feed(frames, own, listening)

    # --- leaving -------------------------------------------------------------------------

    async def _page_gone(self, guest: Guest) -> None:
        await self._close_rtc(guest)
        key = guest.key
        was_guest = key is not None and self.guests.get(key) is guest
        state = self._state()
        in_room = state is not None and key is not None and key in state.members
        gone = self.book.gone(guest, in_room)
        if key is None or not was_guest:
            return
        self.mixer.forget(key)
        self._tell_load()
        if gone is Gone.DROP:
            log.info("web: guest %s closed its page", guest.label)
            self.node.guests.drop(key)
        elif gone is Gone.GRACE:
            loop = asyncio.get_running_loop()
            old = self._grace_timers.pop(key, None)
            if old is not None:
                old.cancel()
            self._grace_timers[key] = loop.call_later(self.book.grace_s, self._grace_over, key)

    def _grace_over(self, key: NodeId) -> None:
        self._grace_timers.pop(key, None)
        if self.book.grace_over(key):
            log.info("web: guest %s did not come back; dropping it", short_fingerprint(key))
            self.node.guests.drop(key)

    async def _close_guest(
        self, guest: Guest, reason: str, *, out: bool = False, code: str = ""
    ) -> None:
        """Close a page; ``out``: put out of the room (left, removed, blocked), ``code``
        says why for the page (``elsewhere``: a newer tab took over, so do not reconnect)."""
        await guest.send(page.closed(reason, out=out, code=code))
        await self._close_rtc(guest)
        if self.book.closed(guest) and guest.key is not None:
            self.mixer.forget(guest.key)
            self._tell_load()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await guest.ws.close()

    @staticmethod
    async def _close_rtc(guest: Guest) -> None:
        if guest.track is not None:
            guest.track.stop()
        if guest.pc is not None:
            await guest.pc.close()
        guest.pc = guest.track = None

    # --- helpers -------------------------------------------------------------------------

    def _state(self) -> RoomState | None:
        replica = self.node.replica
        return replica.state if replica is not None else None

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` beside the gateway; a failure is logged, never dropped silently."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("web: a background task failed", exc_info=task.exception())


async def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


async def _listen(runner: web.AppRunner, bind: str, port: int, tls: Any) -> int:
    """Listen on ``port`` (or any free port if it is taken); returns the port."""
    for candidate in (port, 0):
        site = web.TCPSite(runner, bind, candidate, ssl_context=tls, reuse_address=True)
        try:
            await site.start()
        except OSError:
            if candidate == 0:
                raise
            log.info("web: port %d is taken; using another", port)
            continue
        served = runner.addresses  # this runner serves this one site
        return int(served[-1][1]) if served else candidate
    raise OSError("no port to listen on")
