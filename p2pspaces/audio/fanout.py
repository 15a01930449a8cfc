"""Encode once, send to many.

aiortc encodes once per peer connection by default (96 kbit/s stereo, its own threads and a
pure-Python level computation per encoder), so a speaker's CPU grows with every listener.  Its
RTCRtpSender also accepts already-encoded ``av.Packet``s from a track and then only packetizes
them (RFC 7587): :class:`PacketTrack` is that way in, used where one stream goes to one peer (a
browser guest's mix).

A speaker sends the same packet to every member, and there even aiortc's packetizing path costs
too much: per packet and per connection, a task wakes, builds an ``RtpPacket`` object, reads the
clock twice for header extensions and serializes, before SRTP and the socket (measured with
``scripts/bench_room.py --profile``: about half of a speaker's CPU with 200 listeners).
:class:`Broadcaster` therefore encodes each 20 ms frame once and writes the RTP header itself
for each connection (:class:`Outlet`: 12 bytes and the MID extension, prepared once), then hands
it to the connection's DTLS transport for SRTP and the wire, all in one pass per frame.  In a
large room it skips the listeners that hear it through a relay, and sends the relays its
packets with its signature (see :mod:`p2pspaces.audio.relay`).  It uses
what aiortc negotiated (payload type, SSRC, the MID extension's id), captured as the sender
starts; aiortc's own sender stays parked on an idle track, so its RTCP keeps running (its
sender reports then carry no packet counts, which none of our receivers use).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import random
import struct
from typing import Any, Protocol

import av
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.opus import Encoder, Pcm

log = logging.getLogger(__name__)

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
QUEUE_FRAMES = 5
"""A peer that cannot take 100 ms of packets loses the oldest rather than delaying the rest."""
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
_HEADER = struct.Struct("!BBHII")
_CSRC = struct.Struct("!I")


class PacketTrack(MediaStreamTrack):
    """An audio track that yields already-encoded Opus packets for one peer's sender."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_FRAMES)
        self.dropped = 0

    def offer(self, payload: bytes, pts: int) -> None:
        """Queue one packet (dropping the oldest if this peer lags)."""
        packet = av.Packet(payload)
        packet.pts = pts
        packet.time_base = TIME_BASE
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(packet)

    async def recv(self) -> Any:  # an av.Packet: aiortc's sender then only packetizes it
        """The next packet; waits (sending nothing) while nothing is offered."""
        return await self._queue.get()


def mid_extension(mid: str, extension_id: int) -> bytes:
    """The RTP header extension block (RFC 8285, one-byte form) carrying the MID."""
    value = mid.encode()
    if not 1 <= extension_id <= 14 or not 1 <= len(value) <= 16:
        raise ValueError("a MID the one-byte header extension form cannot carry")
    element = bytes([extension_id << 4 | (len(value) - 1)]) + value
    element += b"\0" * (-len(element) % 4)
    return b"\xbe\xde" + struct.pack("!H", len(element) // 4) + element


class Outlet:
    """One connection's audio sender, written to directly (see the module's docs)."""

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender = sender
        self.idle = PacketTrack()
        sender.replaceTrack(self.idle)
        self._payload_type: int | None = None
        self._extension = b""
        self._ssrc = int(sender._ssrc)
        self._seq = random.getrandbits(16)
        self._origin = random.getrandbits(32)
        self._next_pts: int | None = None
        self.sent = 0
        self.failed = 0
        start = sender.send

        async def send(parameters: Any) -> None:
            self.configure(parameters)
            await start(parameters)

        sender.send = send  # type: ignore[method-assign]

    def configure(self, parameters: Any) -> None:
        """Take the negotiated payload type and MID extension (``RTCRtpSendParameters``)."""
        self._payload_type = int(parameters.codecs[0].payloadType)
        ids = [e.id for e in parameters.headerExtensions if e.uri == MID_URI]
        if ids and parameters.muxId:
            self._extension = mid_extension(parameters.muxId, ids[0])

    @property
    def ready(self) -> bool:
        """Negotiated and the DTLS handshake done."""
        return self._payload_type is not None and self.sender.transport.state == "connected"

    def packet(self, payload: bytes, pts: int, csrc: int | None = None) -> bytes:
        """The RTP packet for ``payload``; the marker starts each talkspurt (RFC 3551).
        ``csrc`` names the voice of a relayed packet (see :mod:`p2pspaces.audio.relay`)."""
        if self._payload_type is None:
            raise RuntimeError("the connection has not negotiated its audio yet")
        marker = 0x80 if pts != self._next_pts else 0
        self._next_pts = pts + FRAME_SAMPLES
        first = 0x90 if self._extension else 0x80
        if csrc is not None:
            first |= 1
        header = _HEADER.pack(
            first,
            marker | self._payload_type,
            self._seq,
            (self._origin + pts) & 0xFFFFFFFF,
            self._ssrc,
        )
        if csrc is not None:
            header += _CSRC.pack(csrc)
        self._seq = (self._seq + 1) & 0xFFFF
        return header + self._extension + payload

    async def send(self, payload: bytes, pts: int, csrc: int | None = None) -> None:
        """Protect and send one packet; a connection closing meanwhile loses only it."""
        if not self.ready:
            return
        try:
            await self.sender.transport._send_rtp(self.packet(payload, pts, csrc))
        except ConnectionError:
            self.failed += 1
            return
        except Exception:  # a broken connection must not silence the others
            self.failed += 1
            if self.failed == 1:
                log.exception("sending audio on one connection failed")
            return
        self.sent += 1

    def close(self) -> None:
        """The connection is gone."""
        self.idle.stop()


class Routes(Protocol):
    """Where a voice's packets go in a large room (see :mod:`p2pspaces.audio.relay`)."""

    def relayed(self, peer: bytes) -> bool:
        """``peer`` hears the room through a relay: send it nothing."""

    def relays(self, peer: bytes) -> bool:
        """``peer`` forwards the room's voices to others: send it signed packets."""

    def prove(self, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        """Our CSRC tag, and the payload with our proof ahead of it (None: not in a room)."""

    def prove_for(self, voice: bytes, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        """The same for a browser guest's packet, signed by us, its gateway."""


class Straight:
    """Routes of a room without relays: every packet to every link, unsigned."""

    def relayed(self, peer: bytes) -> bool:
        return False

    def relays(self, peer: bytes) -> bool:
        return False

    def prove(self, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        return None

    def prove_for(self, voice: bytes, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        return None


class Broadcaster:
    """One encoder, many connections."""

    def __init__(self, bitrate: int = 40_000) -> None:
        self._encoder = Encoder(bitrate)
        self.outlets: dict[bytes, Outlet] = {}
        self.routes: Routes = Straight()

    @property
    def frames_encoded(self) -> int:
        """How many frames the encoder has encoded."""
        return self._encoder.encoded

    def attach(self, peer: bytes, sender: RTCRtpSender) -> Outlet:
        """Feed ``peer``'s connection through its audio ``sender`` from now on."""
        self.forget(peer)
        outlet = self.outlets[peer] = Outlet(sender)
        return outlet

    def forget(self, peer: bytes) -> None:
        """Stop feeding a peer whose connection is gone."""
        outlet = self.outlets.pop(peer, None)
        if outlet is not None:
            outlet.close()

    async def send(self, frame: Pcm, pts: int) -> bytes:
        """Encode ``frame`` once and send it on every connection; returns the packet."""
        payload = self._encoder.encode(frame)
        routes = self.routes
        proven: tuple[int, bytes] | None = None
        signed = False
        for peer, outlet in list(self.outlets.items()):
            if routes.relayed(peer):
                continue
            if routes.relays(peer):
                if not signed:  # once per frame, for every relay
                    proven, signed = routes.prove(pts, payload), True
                if proven is not None:
                    await outlet.send(proven[1], pts, proven[0])
                    continue
            await outlet.send(payload, pts)
        return payload
