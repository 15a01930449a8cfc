"""mDNS/DNS-SD discovery: advertise this node and its room; browse for the others.

One service per node, ``_p2pspaces._tcp.local.``, port = the node's signaling port.  The TXT
record carries the protocol version, node key, display name and, for a room's authority, the room
id, the host's key and the digest of its genesis (which together make the id: an advert by the
host proves it is the host's), title and counts, signed by the node key (each TXT string under 255
bytes, RFC 6763 section 6.1).  TXT is only a hint for the room list: what a member believes comes
from signed updates.

The instance name is the node's full fingerprint, unique by construction, so we register without
zeroconf's name probing (``cooperating_responders=True``): probing exists to resolve name clashes
(RFC 6762 section 8.1) and costs about 1.2 s per advert, which is most of a join.

Records carry a short TTL (:data:`TTL`) so that a node that crashed without its goodbye packet
leaves every room list within about that time (RFC 6762 section 5.2 cache maintenance).
python-zeroconf keeps a PTR record at least 1125 s whatever its TTL (a guard against refresh
storms), and its browser reports a service removed only when the PTR goes, so a crashed host's
room would stay listed for 19 minutes.  The SRV and TXT records do expire at :data:`TTL`, and a
room's authority re-announces well within it; so :meth:`Discovery._sweep` asks again for each
listed room whose TXT record is no longer in the cache (expired, or pushed out of zeroconf's
capped cache by a flood), and reports its node gone if nobody answers within
:data:`_CONFIRM_MS`.  A live node answers; a crashed one, or a flood's fake, does not.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from zeroconf import (
    BadTypeInNameException,
    IPVersion,
    ServiceStateChange,
    Zeroconf,
    current_time_millis,
)
from zeroconf._services.info import AddressResolverIPv4  # not re-exported for type checkers
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from p2pspaces.core.codec import Invalid, Text
from p2pspaces.core.identity import Identity, NodeId, fingerprint, verify
from p2pspaces.core.room import room_id_from
from p2pspaces.core.wire import NAME_MAX, TITLE_MAX

log = logging.getLogger(__name__)

SERVICE_TYPE = "_p2pspaces._tcp.local."
TXT_VERSION = "2"
TTL = 15
DOMAIN_ADVERT = b"p2pspaces/1 mdns advert\x00"
_TXT_MAX = 250
_RESOLVE_MS = 3000
_CONFIRM_MS = 2000
_WARNED_MAX = 1024
NAMES_MAX = 4096
"""Advert names whose version and key are remembered (least recently heard go first)."""
SWEEP_S = 2.0
"""How often the cache is checked for room adverts whose records expired."""
_TYPE_TXT, _CLASS_IN = 16, 1
RESOLVING_MAX = 64
"""Lookups under way at once; during a flood of new names the rest wait for their next change
(a real node re-announces every few seconds, so it is found once the flood passes)."""


@dataclass(frozen=True, slots=True)
class WebPorts:
    """Where the advertising node serves the room to phones' browsers (its own addresses)."""

    http: int
    https: int
    cert_sha256: str
    """The secure page's certificate fingerprint (hex), for people who compare."""

    def txt(self) -> str:
        return f"{self.http}/{self.https}/{self.cert_sha256}"

    @classmethod
    def parse(cls, text: str) -> WebPorts:
        http, https, cert = text.split("/")
        ports = int(http), int(https)
        if not all(0 < port < 65536 for port in ports) or len(cert) != 64:
            raise ValueError("bad web ports")
        int(cert, 16)
        return cls(*ports, cert.lower())


@dataclass(frozen=True, slots=True)
class RoomAdvert:
    """What a host says about its room in its advert."""

    room_id: bytes
    title: str
    speakers: int
    listeners: int
    host: bytes
    """The room's host's key (the advertiser, or the host of the room a co-host keeps)."""
    birth: bytes
    """The digest of the host's signed genesis: ``room_id`` is ``room_id_from(host, birth)``,
    checked on receipt, so an advert signed by ``host`` is the host's own room's."""
    recording: bool = False
    web: WebPorts | None = None
    """Where the advertising node serves the room to phones, if it does."""


@dataclass(frozen=True, slots=True)
class PeerAdvert:
    """A node seen on the network, with its signed TXT contents."""

    node_id: NodeId
    name: str
    addresses: tuple[str, ...]
    port: int
    room: RoomAdvert | None

    @property
    def by_host(self) -> bool:
        """Whether this is a room's host advertising its own room (proved: see
        :attr:`RoomAdvert.birth`), rather than a co-host keeping it, or a stranger's claim."""
        return self.room is not None and self.room.host == self.node_id


@dataclass(frozen=True, slots=True)
class PeerSeen:
    """A node appeared or changed its advert."""

    advert: PeerAdvert


@dataclass(frozen=True, slots=True)
class PeerGone:
    """A node withdrew its advert, or its records expired."""

    node_id: NodeId


DiscoveryEvent = PeerSeen | PeerGone


def _remember(table: OrderedDict[str, Any], name: str, value: Any) -> None:
    """Note ``name`` as the most recently heard, forgetting the oldest beyond the cap."""
    table.pop(name, None)
    table[name] = value
    while len(table) > NAMES_MAX:
        table.popitem(last=False)


def instance_name(node_id: bytes) -> str:
    """The DNS-SD instance name of a node: its fingerprint without separators."""
    return fingerprint(node_id).replace("-", "") + "." + SERVICE_TYPE


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _clip(text: str, key: str) -> str:
    """Cut text so that ``key=text`` fits one TXT string, at a character boundary."""
    while len(f"{key}={text}".encode()) > _TXT_MAX:
        text = text[:-1]
    return text


def _signed_fields(fields: dict[str, str], port: int) -> bytes:
    items = sorted((k, v) for k, v in fields.items() if k != "s")
    packed: bytes = msgpack.packb([port, items])
    return packed


def encode_txt(
    identity: Identity, name: str, port: int, room: RoomAdvert | None, version: int = 0
) -> dict[str, str]:
    """The signed TXT properties of this node's advert (``version`` rises with every change)."""
    fields = {
        "v": TXT_VERSION,
        "k": _b64(identity.node_id),
        "n": _clip(name, "n"),
        "q": str(version),
    }
    if room is not None:
        fields |= {
            "r": _b64(room.room_id),
            "h": _b64(room.host),
            "g": _b64(room.birth),
            "t": _clip(room.title, "t"),
            "c": f"{room.speakers}/{room.listeners}",
        }
        if room.recording:
            fields["f"] = "rec"
        if room.web is not None:
            fields["w"] = room.web.txt()

    fields["s"] = _b64(identity.sign(DOMAIN_ADVERT, _signed_fields(fields, port)))
    return fields


class AdvertError(Exception):
    """A TXT record that is malformed or badly signed."""


def decode_txt(properties: dict[str, str], port: int) -> tuple[NodeId, str, RoomAdvert | None, int]:
    """Check a TXT record's signature and fields; raise :class:`AdvertError` with the reason."""
    try:
        if properties.get("v") != TXT_VERSION:
            raise AdvertError(f"protocol version {properties.get('v')!r}")
        node_id = NodeId(_unb64(properties["k"]))
        signature = _unb64(properties["s"])
        if not verify(node_id, signature, DOMAIN_ADVERT, _signed_fields(properties, port)):
            raise AdvertError("bad signature")
        room = None
        if "r" in properties:
            speakers, listeners = (int(n) for n in properties["c"].split("/"))
            title = Text(TITLE_MAX, min_chars=1).parse(properties["t"])
            recording = properties.get("f") == "rec"
            host, birth = _unb64(properties["h"]), _unb64(properties["g"])
            web = WebPorts.parse(properties["w"]) if "w" in properties else None
            room = RoomAdvert(
                _unb64(properties["r"]), title, speakers, listeners, host, birth, recording, web
            )
            if len(host) != 32 or len(birth) != 32 or speakers < 0 or listeners < 0:
                raise AdvertError("bad room fields")
            if room.room_id != room_id_from(host, birth):
                raise AdvertError("room id is not its host's")
        version = int(properties["q"])
        return node_id, Text(NAME_MAX).parse(properties["n"]), room, version
    except Invalid as exc:
        raise AdvertError(str(exc)) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise AdvertError(f"malformed TXT ({type(exc).__name__})") from None


class Discovery:
    """Advertise one node and browse for others, reporting :data:`DiscoveryEvent`s."""

    def __init__(
        self,
        identity: Identity,
        on_event: Callable[[DiscoveryEvent], None],
        interface: str | None = None,
        addresses: tuple[str, ...] = (),
        first_version: int = 0,
    ) -> None:
        """``first_version`` should rise across restarts (the node passes wall-clock ms), so a
        restarted node's adverts are never mistaken for older ones still cached."""
        self._identity = identity
        self._on_event = on_event
        self._interface = interface
        self._addresses = addresses
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._info: AsyncServiceInfo | None = None
        self._resolving: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[str, NodeId] = OrderedDict()
        self._pending: set[str] = set()
        self._versions: OrderedDict[str, int] = OrderedDict()
        self._version = first_version
        self._stale: set[str] = set()
        self._rooms: set[str] = set()
        """Names whose last advert carried a room (swept for expiry: see the module's docs)."""
        self._sweeper: asyncio.Task[None] | None = None
        self._confirming: set[str] = set()
        self._warned: set[str] = set()
        self.refused = 0
        """Adverts refused as malformed or badly signed."""
        self.skipped = 0
        """New names not looked up because too many lookups were under way."""

    async def start(self) -> None:
        """Open the mDNS sockets and start browsing."""
        interfaces = [self._interface] if self._interface else None
        self._zc = (
            AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
            if interfaces
            else AsyncZeroconf(ip_version=IPVersion.V4Only)
        )
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change]
        )
        self._sweeper = asyncio.ensure_future(self._sweep_every(SWEEP_S))

    async def advertise(self, name: str, port: int, room: RoomAdvert | None) -> None:
        """Publish (or update) this node's advert."""
        if self._zc is None:
            raise RuntimeError("Discovery.start() must run before advertise()")
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            instance_name(self._identity.node_id),
            port=port,
            properties=encode_txt(self._identity, name, port, room, self._version),
            server=fingerprint(self._identity.node_id).replace("-", "").lower() + ".local.",
            parsed_addresses=list(self._addresses),
            host_ttl=TTL,
            other_ttl=TTL,
        )
        self._version += 1
        if self._info is None:
            # No probing: the name is unique by construction (see the module docstring).
            await self._zc.async_register_service(info, cooperating_responders=True)
        else:
            await self._zc.async_update_service(info)
        self._info = info

    async def resolve_host(self, host: str, within_s: float) -> str | None:
        """The IPv4 address of a ``.local`` host name, asked on this node's network (None if
        nobody answers within ``within_s``)."""
        if self._zc is None:
            return None
        resolver = AddressResolverIPv4(host if host.endswith(".") else f"{host}.")
        if not await resolver.async_request(self._zc.zeroconf, within_s * 1000):
            return None
        addresses = resolver.parsed_addresses(IPVersion.V4Only)
        return addresses[0] if addresses else None

    async def close(self) -> None:
        """Withdraw the advert (goodbye packets) and stop browsing."""
        for task in self._resolving:
            task.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._zc is None:
            return
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._info is not None:
            # The outer await queues the goodbye packets; the inner one waits until they are
            # sent, so browsers drop the room now rather than when its records expire.
            goodbye = await self._zc.async_unregister_service(self._info)
            await goodbye
        await self._zc.async_close()
        self._zc = None

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Removed:
            self._gone(name)
            return
        # One resolution per name at a time, re-run if the advert changed meanwhile: two
        # overlapping lookups could otherwise finish out of order and report a stale advert.
        if name in self._pending:
            self._stale.add(name)
            return
        if len(self._pending) >= RESOLVING_MAX:
            self.skipped += 1
            return
        self._pending.add(name)
        task = asyncio.ensure_future(self._resolve(zeroconf, name))
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    def _gone(self, name: str) -> None:
        self._versions.pop(name, None)
        self._rooms.discard(name)
        node_id = self._seen.pop(name, None)
        if node_id is not None:
            self._on_event(PeerGone(node_id))

    async def _sweep_every(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                self._sweep()
            except Exception:  # a sweep must not end discovery
                log.exception("mDNS cache sweep failed")

    def _sweep(self) -> None:
        """Ask again for each listed room whose TXT record left the cache (its node crashed
        or left the network without a goodbye, or a flood pushed the record out)."""
        if self._zc is None:
            return
        zeroconf = self._zc.zeroconf
        now = current_time_millis()
        for name in list(self._rooms):
            if name not in self._seen:  # forgotten (the table is capped)
                self._rooms.discard(name)
                continue
            records = zeroconf.cache.async_all_by_details(name, _TYPE_TXT, _CLASS_IN)
            fresh = any(not record.is_expired(now) for record in records)
            if fresh or name in self._confirming or len(self._confirming) >= RESOLVING_MAX:
                continue
            self._confirming.add(name)
            task = asyncio.ensure_future(self._confirm(zeroconf, name))
            self._resolving.add(task)
            task.add_done_callback(self._resolving.discard)

    async def _confirm(self, zeroconf: Zeroconf, name: str) -> None:
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zeroconf, _CONFIRM_MS):
                log.info("the advert %r expired without a goodbye", name[:40])
                self._gone(name)
        except BadTypeInNameException:
            self._gone(name)
        finally:
            self._confirming.discard(name)

    async def _resolve(self, zeroconf: Zeroconf, name: str) -> None:
        try:
            while True:
                self._stale.discard(name)
                await self._resolve_once(zeroconf, name)
                if name not in self._stale:
                    return
        finally:
            self._pending.discard(name)

    async def _resolve_once(self, zeroconf: Zeroconf, name: str) -> None:
        try:
            info = AsyncServiceInfo(SERVICE_TYPE, name)
        except BadTypeInNameException:
            return
        if not await info.async_request(zeroconf, _RESOLVE_MS) or info.port is None:
            return
        parsed = self._parse(name, info)
        if parsed is None:
            return
        advert, version = parsed
        if advert.node_id == self._identity.node_id or version < self._versions.get(name, 0):
            return  # our own advert, or an older one still in the cache (RFC 6762 10.2)
        _remember(self._versions, name, version)
        _remember(self._seen, name, advert.node_id)
        if advert.room is not None:
            self._rooms.add(name)
        else:
            self._rooms.discard(name)
        self._on_event(PeerSeen(advert))

    def _parse(self, name: str, info: AsyncServiceInfo) -> tuple[PeerAdvert, int] | None:
        properties = {
            k.decode(errors="replace"): (v or b"").decode(errors="replace")
            for k, v in info.properties.items()
        }
        try:
            node_id, peer_name, room, version = decode_txt(properties, info.port or 0)
            if instance_name(node_id) != name:
                raise AdvertError("instance name does not match the node key")
        except AdvertError as exc:
            self.refused += 1
            if name not in self._warned and len(self._warned) < _WARNED_MAX:
                self._warned.add(name)
                log.warning("ignoring mDNS advert %r: %s", name[:80], exc)
                if len(self._warned) == _WARNED_MAX:
                    log.warning("%d bad adverts: not naming any more of them", _WARNED_MAX)
            return None
        addresses = tuple(info.parsed_addresses(IPVersion.V4Only))
        return PeerAdvert(node_id, peer_name, addresses, info.port or 0, room), version
