"""The web gateway: any node of a Space serves it to the browsers near it (docs/DESIGN.md 5b).

One aiohttp application, served twice: plain HTTP (any phone can open it; listen, chat, raise a
hand) and HTTPS with the node's self-signed certificate (the browser's microphone needs a
secure page).  Each browser tab is a :class:`Guest`: a WebSocket carries the page's own signed
messages in (:meth:`Node.relay_guest` passes them on as signed; the gateway cannot forge them)
and the room's news out as JSON; a WebRTC connection (aiortc, no ICE servers) carries the
room's audio to the page and, once the guest may speak, its voice in.

The page proves its key on connecting: it signs ``DOMAIN_WEB + challenge + gateway key``, so a
tab cannot take over another guest's place, and a signature made for one gateway is worthless
at another.  Every frame is capped in size and rate like the mesh's channels; a page that
breaks the caps loses its socket (and, after the grace, its place), nobody else does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from p2pspaces.audio.fanout import PacketTrack
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
from p2pspaces.core.identity import NODE_ID_SIZE, NodeId, short_fingerprint, verify
from p2pspaces.core.limits import TokenBucket
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import ActionKind
from p2pspaces.web.cert import Certificate, load_or_create
from p2pspaces.web.mixer import GuestMixer
from p2pspaces.web.page import (
    HiddenCandidate,
    in_words,
    out_reason,
    state_message,
    without_mdns_candidates,
)
from p2pspaces.web.settings import (
    DEFAULT_GRACE_S,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_MAX_GUESTS,
)

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
DOMAIN_WEB = b"p2pspaces/1 web guest\x00"
TEXT_MAX = 32 * 1024
"""A JSON frame from a page: an SDP offer is the biggest (a few KB)."""
BINARY_MAX = 4096
"""A signed envelope from a page: a request, a chat line (500 characters) or a reaction."""
FRAME_RATE = 20.0
FRAME_BURST = 40.0
HEARTBEAT_S = 5.0
"""WebSocket pings: a page that vanished without closing (a phone gone off the Wi-Fi) is
noticed within one and a half of these, then keeps its place for the grace."""
OTHERS_SHOWN = 5
RECENT_CHAT = 30
LOAD_GAP_S = 2.0
MDNS_WAIT_S = 1.0
"""How long the page's hidden addresses are looked up (the answer is not held back by it)."""
"""A gateway tells the room its guest count at most this often (each costs every member a
relayed contact)."""
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


@dataclass(frozen=True, slots=True)
class WebInfo:
    """Where the pages are, and the certificate's fingerprint."""

    http: str
    https: str
    cert_sha256: str

    def fields(self) -> dict[str, str]:
        return {"http": self.http, "https": self.https, "cert_sha256": self.cert_sha256}


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

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(message))


class WebGateway:
    """Serves the room this node is in to browsers; see the module's docstring."""

    def __init__(
        self,
        node: Any,
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
        self.max_guests = max_guests
        self.grace_s = grace_s
        self._ports = (http_port, https_port)
        self._clock = clock or node._clock
        self.guests: dict[NodeId, Guest] = {}
        """Proven pages by guest key (one tab per key: a newer one replaces the older)."""
        self.pages: set[Guest] = set()
        self._graces: dict[NodeId, asyncio.TimerHandle] = {}
        self._runners: list[web.AppRunner] = []
        self._state_due = False
        self.mixer = GuestMixer(node.node_id)
        self.info: WebInfo | None = None
        self.cert: Certificate | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ports_bound = (0, 0)
        self._load_due = False
        self._told_load = False
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_CHAT)
        """The last chat lines, for a page that opens (or moves to the secure page) midway."""
        self.speaking: set[bytes] = set()
        """Who is speaking now (from the node's level meters), for pages that open midway."""

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
        self.node.watchers.append(self.on_event)
        self.node.audio.tap = self._tap
        meters = self.node.audio.meters
        self.speaking = {member for member, meter in meters.items() if meter.speaking}
        self._ports_bound = (ports[0], ports[1])
        self._tell_load()
        log.info("web: serving %s and %s", self.info.http, self.info.https)
        return self.info

    async def close(self) -> None:
        """Close every page and stop listening."""
        if self.on_event in self.node.watchers:
            self.node.watchers.remove(self.on_event)
        self.node.audio.tap = None
        for handle in self._graces.values():
            handle.cancel()
        self._graces.clear()
        for guest in list(self.pages):
            await self._close_guest(guest, "the node serving this page stopped")
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    @property
    def serving(self) -> int:
        """How many guests this gateway serves now."""
        return len(self.guests)

    # --- HTTP ----------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html")

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(self._welcome_room())

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=TEXT_MAX, heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        guest = Guest(ws, secure=request.secure)
        if len(self.pages) >= self.max_guests + 5 or self.serving >= self.max_guests:
            await guest.send(
                {
                    "t": "full",
                    "reason": f"this node already serves {self.serving} guests, its limit",
                    "others": self.other_gateways(),
                }
            )
            await ws.close()
            return ws
        self.pages.add(guest)
        try:
            await guest.send(
                {
                    "t": "welcome",
                    "challenge": guest.challenge.hex(),
                    "gateway": self.node.node_id.hex(),
                    "gateway_name": self.node.name,
                    **self._welcome_room(),
                }
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

    def _welcome_room(self) -> dict[str, Any]:
        replica = self.node.replica
        room = None
        if replica is not None:
            state = replica.state
            room = {"id": state.room_id.hex(), "title": state.title}
        info = self.info
        return {
            "room": room,
            "http": info.http if info else None,
            "https": info.https if info else None,
            "cert_sha256": info.cert_sha256 if info else None,
            "guests": self.serving,
            "max_guests": self.max_guests,
            "others": self.other_gateways(),
        }

    def other_gateways(self) -> list[dict[str, Any]]:
        """Other nodes of this room that serve pages and have room for guests, least busy
        first (from the signed contacts the room relays)."""
        state = self._state()
        if state is None:
            return []
        others = []
        for node, member in state.members.items():
            contact = self.node.contact_of(node) if member.gateway is None else None
            if node == self.node.node_id or contact is None or not contact.web_port:
                continue
            if contact.guests >= contact.max_guests or not contact.addresses:
                continue
            address = contact.addresses[0]
            others.append(
                {
                    "name": member.name,
                    "http": f"http://{address}:{contact.web_port}/",
                    "https": f"https://{address}:{contact.web_secure_port}/",
                    "guests": contact.guests,
                    "max_guests": contact.max_guests,
                }
            )
        others.sort(key=lambda o: (o["guests"] / max(1, o["max_guests"]), o["guests"]))
        return others[:OTHERS_SHOWN]

    def _tell_load(self) -> None:
        """Tell the room how busy this gateway is (at most every LOAD_GAP_S)."""
        if self._load_due:
            return
        self._load_due = True

        def tell() -> None:
            self._load_due = False
            http, https = self._ports_bound
            self.node.set_web_load(http, https, self.serving, self.max_guests)

        asyncio.get_running_loop().call_later(LOAD_GAP_S if self._told_load else 0, tell)
        self._told_load = True

    # --- from the page -------------------------------------------------------------------

    async def _on_text(self, guest: Guest, data: str) -> None:
        try:
            message = json.loads(data)
            kind = message["t"] if isinstance(message, dict) else None
        except (ValueError, KeyError):
            await guest.send({"t": "error", "code": "bad_message", "reason": "not JSON"})
            return
        if kind == "hello":
            await self._on_hello(guest, message)
        elif kind == "bye" and guest.key is not None:
            guest.bye = True  # the tab is closing: no grace to wait for it
        elif kind == "offer" and guest.key is not None:
            await self._on_offer(guest, message)
        elif kind == "volume" and guest.key is not None:
            self._on_volume(guest.key, message)
        else:
            await guest.send(
                {"t": "error", "code": "bad_message", "reason": f"unexpected {str(kind)[:20]}"}
            )

    def _on_volume(self, guest: NodeId, message: dict[str, Any]) -> None:
        """The guest plays someone louder or quieter, for itself only."""
        try:
            source = bytes.fromhex(message["id"])
            gain = float(message["gain"])
        except (KeyError, TypeError, ValueError):
            return
        if len(source) == NODE_ID_SIZE and math.isfinite(gain):
            self.mixer.set_volume(guest, source, gain)

    async def _on_hello(self, guest: Guest, message: dict[str, Any]) -> None:
        try:
            key = bytes.fromhex(message["key"])
            signature = bytes.fromhex(message["sig"])
        except (KeyError, TypeError, ValueError):
            key, signature = b"", b""
        transcript = guest.challenge + self.node.node_id
        if len(key) != NODE_ID_SIZE or not verify(key, signature, DOMAIN_WEB, transcript):
            await guest.send({"t": "error", "code": "bad_hello", "reason": "key not proven"})
            return
        node_key = NodeId(key)
        if node_key == self.node.node_id:
            await guest.send({"t": "error", "code": "bad_hello", "reason": "that is my key"})
            return
        old = self.guests.get(node_key)
        if old is not None and old is not guest:
            await self._close_guest(
                old, "this Space is open in another tab or page", code="elsewhere"
            )
        handle = self._graces.pop(node_key, None)
        if handle is not None:
            handle.cancel()
        guest.key = node_key
        self.guests[node_key] = guest
        self._tell_load()
        log.info("web: guest %s connected (%s)", guest.label, "https" if guest.secure else "http")
        await self._push_state(guest)
        for line in list(self.recent):
            await guest.send(line)

    async def _on_signed(self, guest: Guest, data: bytes) -> None:
        if guest.key is None or len(data) > BINARY_MAX:
            await guest.send({"t": "error", "code": "bad_message", "reason": "not accepted"})
            return
        try:
            self.node.relay_guest(guest.key, data)
        except CommandError as exc:
            await guest.send(
                {"t": "error", "code": ErrorCode.REFUSED, "reason": in_words(str(exc))}
            )

    async def _on_offer(self, guest: Guest, message: dict[str, Any]) -> None:
        sdp = message.get("sdp")
        if not isinstance(sdp, str) or guest.key is None:
            return
        if guest.pc is not None:
            await guest.pc.close()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        guest.pc = pc
        track = guest.track = PacketTrack()
        try:
            usable, hidden = without_mdns_candidates(sdp)
            offer = RTCSessionDescription(sdp=usable, type="offer")
            await pc.setRemoteDescription(offer)
            pc.addTrack(track)
            for transceiver in pc.getTransceivers():
                if transceiver.kind == "audio":
                    # Our receive path, as in the mesh (see p2pspaces.net.mesh).
                    hook = functools.partial(self._guest_rtp, guest.key)
                    transceiver.receiver._handle_rtp_packet = hook  # type: ignore[method-assign]
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc raises many kinds on a bad SDP: a page's bad input
            log.info("web: unusable offer from %s: %s", guest.label, type(exc).__name__)
            await guest.send({"t": "error", "code": "bad_offer", "reason": "unusable offer"})
            await pc.close()
            guest.pc = guest.track = None
            return
        await guest.send({"t": "answer", "sdp": pc.localDescription.sdp})
        if hidden:
            self._spawn(self._unhide(guest, pc, hidden))

    async def _unhide(
        self, guest: Guest, pc: RTCPeerConnection, hidden: list[HiddenCandidate]
    ) -> None:
        """Look up the page's ``.local`` candidates with the node's mDNS and hand over those
        that resolve (see :func:`~p2pspaces.web.page.without_mdns_candidates`)."""
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

    async def _guest_rtp(self, guest: NodeId, packet: Any, arrival_time_ms: int = 0) -> None:
        """The guest's voice: played here and sent on to the room only while the signed state
        shows it an unmuted speaker served by us."""
        state = self._state()
        if state is None or state.gateway_of(guest) != self.node.node_id:
            return
        if state.may_speak(guest):
            await self.node.guest_voice(guest, packet)

    # --- to the page ---------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The node's news, for the pages (a node watcher: synchronous, schedules sends)."""
        if isinstance(event, StateChanged):
            self._state_changed(event)
        elif isinstance(event, ChatReceived):
            self.recent.append(
                {"t": "chat", "from": event.author.hex(), "name": event.name, "text": event.text}
            )
            self._to_all(
                {"t": "chat", "from": event.author.hex(), "name": event.name, "text": event.text}
            )
        elif isinstance(event, ReactionReceived):
            self._to_all(
                {
                    "t": "reaction",
                    "from": event.author.hex(),
                    "name": event.name,
                    "emoji": event.emoji,
                }
            )
        elif isinstance(event, Speaking | Quiet):
            if isinstance(event, Speaking):
                self.speaking.add(event.member)
            else:
                self.speaking.discard(event.member)
            self._to_all(
                {"t": "speaking", "id": event.member.hex(), "on": isinstance(event, Speaking)}
            )
        elif isinstance(event, GuestRefused):
            guest = self.guests.get(NodeId(event.guest))
            if guest is not None:
                reason = in_words(event.reason)
                self._spawn(guest.send({"t": "error", "code": event.code, "reason": reason}))
        elif isinstance(event, Ended | Left):
            reason = (
                "the Space ended"
                if isinstance(event, Ended)
                else ("the node serving this page left the Space")
            )
            for guest in list(self.pages):
                self._spawn(self._close_guest(guest, reason, out=True))

    def _state_changed(self, event: StateChanged) -> None:
        state = event.state
        action = event.action
        for key, guest in list(self.guests.items()):
            if key in state.members:
                continue
            was_ours = action is not None and (
                action.target == key or (event.actor == key and action.kind is ActionKind.LEAVE)
            )
            if was_ours and action is not None:
                kind = action.kind.name.lower()
                self._spawn(self._close_guest(guest, out_reason(action.kind), out=True, code=kind))
        if not self._state_due:
            self._state_due = True
            asyncio.get_running_loop().call_later(STATE_DELAY_S, self._push_all)

    def _push_all(self) -> None:
        self._state_due = False
        view = self._room_view()  # once for every page: only "me" differs between them
        for guest in list(self.guests.values()):
            self._spawn(guest.send(self._for(view, guest)))

    async def _push_state(self, guest: Guest) -> None:
        await guest.send(self._for(self._room_view(), guest))

    def _room_view(self) -> dict[str, Any]:
        """The room as every page shows it."""
        message = state_message(self._state(), None, self.node.node_id)
        message["speaking"] = [m.hex() for m in self.speaking]
        message["guests"] = self.serving
        message["others"] = self.other_gateways()  # where to go if this node goes away
        return message

    def _for(self, view: dict[str, Any], guest: Guest) -> dict[str, Any]:
        state = self._state()
        key = guest.key
        member = key is not None and state is not None and key in state.members
        blocked = key is not None and state is not None and key in state.blocked
        return {**view, "me": key.hex() if member and key is not None else None, "blocked": blocked}

    def _to_all(self, message: dict[str, Any]) -> None:
        for guest in list(self.guests.values()):
            self._spawn(guest.send(message))

    # --- audio to the pages --------------------------------------------------------------

    def _tap(self, frames: list[tuple[bytes, Any]], own: Any) -> None:
        listening = {key: g.track for key, g in self.guests.items() if g.track is not None}
        if listening:
            self.mixer.feed(frames, own, listening)

    # --- leaving -------------------------------------------------------------------------

    async def _page_gone(self, guest: Guest) -> None:
        self.pages.discard(guest)
        await self._close_rtc(guest)
        key = guest.key
        if key is None or self.guests.get(key) is not guest:
            return
        del self.guests[key]
        self.mixer.forget(key)
        self._tell_load()
        state = self._state()
        if state is not None and key in state.members:
            if guest.bye:
                log.info("web: guest %s closed its page", guest.label)
                self.node.drop_guest(key)
                return
            loop = asyncio.get_running_loop()
            self._graces[key] = loop.call_later(self.grace_s, self._grace_over, key)

    def _grace_over(self, key: NodeId) -> None:
        self._graces.pop(key, None)
        if key not in self.guests:
            log.info("web: guest %s did not come back; dropping it", short_fingerprint(key))
            self.node.drop_guest(key)

    async def _close_guest(
        self, guest: Guest, reason: str, *, out: bool = False, code: str = ""
    ) -> None:
        """Close a page; ``out``: put out of the room (left, removed, blocked), ``code``
        says why for the page (``elsewhere``: a newer tab took over, so do not reconnect)."""
        message = {"t": "out" if out else "closed", "reason": reason}
        if code:
            message["code"] = code
        await guest.send(message)
        await self._close_rtc(guest)
        if guest.key is not None and self.guests.get(guest.key) is guest:
            del self.guests[guest.key]
            self.mixer.forget(guest.key)
            self._tell_load()
        self.pages.discard(guest)
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

    def _spawn(self, coro: Any) -> None:
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
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else candidate
    raise OSError("no port to listen on")
