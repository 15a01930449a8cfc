"""The WebRTC mesh: one aiortc RTCPeerConnection per peer, with a control data channel.

* Who offers is decided by the keys: the smaller public key offers, so two nodes never both do.
* The offer and answer are signed by their senders over both node keys, a fresh nonce and every
  DTLS fingerprint in the SDP (RFC 8827's idea): a receiver refuses an SDP whose fingerprints or
  keys do not match the signature, and aiortc's DTLS handshake then checks the peer's certificate
  against those fingerprints, so the data channel is bound to the peer's identity.
* The control channel is negotiated out of band (``negotiated=True, id=0``) on both sides, so
  neither waits for a ``datachannel`` event.  It is reliable and ordered.
* aiortc does not cap incoming data-channel messages and notices a dead peer only after about
  30 s, so both are ours: messages over :data:`MESSAGE_MAX` or over the per-peer rate drop the
  peer; :meth:`Mesh.check_liveness` drops peers silent past their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiortc.rtcsctptransport
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from p2pspaces.core import wire
from p2pspaces.core.errors import ErrorCode, PeerError, WireError
from p2pspaces.core.identity import Identity, NodeId, short_fingerprint
from p2pspaces.core.limits import TokenBucket
from p2pspaces.core.member import FLOODING
from p2pspaces.core.wire import Answer, Offer
from p2pspaces.net import signaling
from p2pspaces.net.receive import take_rtp
from p2pspaces.net.signaling import Session

log = logging.getLogger(__name__)

MESSAGE_MAX = 256 * 1024
"""aiortc advertises ``a=max-message-size:262144``; we refuse anything bigger."""
MESSAGE_RATE = 100.0
MESSAGE_BURST = 400.0
OPEN_TIMEOUT = 10.0
SEND_QUEUE_MAX = 4 * 1024 * 1024
"""Bytes queued for one peer's control channel before that peer is dropped as stalled."""
OFFENCES_MAX = 1024
FLUSH_NOTICE_S = 0.3
"""How long a dropped flooder's link stays open for the notice saying why."""
PENALTY_MAX_S = 60.0
"""Offences older than this are forgotten when the record is full."""
VOICE_MAX = 1500
"""A relayed voice frame: a guest's key, seq, timestamp and one Opus packet."""
VOICE_RATE = 700.0
VOICE_BURST = 1400.0
"""Relayed voice frames a peer may send a second: 50 a second for each guest speaker (at most
12 on a stage) with room to spare; frames over the rate are dropped, not the peer."""
VOICE_QUEUE_MAX = 64 * 1024
VOICE_LABEL = "voice"


SCTP_RTO_INITIAL_S = 0.5
SCTP_RTO_MIN_S = 0.4
"""Retransmission timers of the control channel's SCTP: browsers' WebRTC stack (dcSCTP) uses
500 ms before the first round trip is measured and never less than 400 ms; aiortc keeps RFC 4960's
3 s and 1 s, made for the internet of 2007.  On a lossy LAN link that left a lost join or
command waiting 3 s, long enough for the other side to count the link silent and drop it."""


def use_webrtc_sctp_timers() -> None:
    """Give aiortc's SCTP (process-wide: it reads module constants) dcSCTP's timers."""
    timers = {"SCTP_RTO_INITIAL": SCTP_RTO_INITIAL_S, "SCTP_RTO_MIN": SCTP_RTO_MIN_S}
    vars(aiortc.rtcsctptransport).update(timers)


class Media(Protocol):
    """The audio side of every connection (see :mod:`p2pspaces.audio.engine`)."""

    def attach(self, peer: bytes, sender: RTCRtpSender) -> None:
        """Send ``peer``'s audio through this connection's ``sender``."""

    async def on_rtp(self, peer: bytes, packet: Any, arrival_time_ms: int = 0) -> None:
        """An RTP packet from ``peer``."""

    def forget(self, peer: bytes) -> None:
        """``peer``'s connection is gone."""


class MeshHandler(Protocol):
    """What the node does with the mesh's news."""

    def admit(self, peer_id: NodeId) -> str | None:
        """Return a reason to refuse this peer, or None to accept it."""

    def on_link_up(self, link: Link) -> None:
        """A peer's control channel is open."""

    def on_message(self, link: Link, data: bytes) -> None:
        """A message arrived from a peer (size and rate already checked)."""

    def on_link_down(self, peer_id: NodeId, reason: str) -> None:
        """A peer's link is gone."""

    def on_voice(self, link: Link, data: bytes) -> None:
        """A relayed voice frame arrived (size and rate already checked)."""


@dataclass(eq=False)
class Link:
    """One peer connection and its control channel."""

    peer_id: NodeId
    name: str
    pc: RTCPeerConnection
    channel: RTCDataChannel
    last_seen: float
    bucket: TokenBucket = field(default_factory=lambda: TokenBucket(MESSAGE_RATE, MESSAGE_BURST))
    flush_before_close: bool = False
    voice_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(VOICE_RATE, VOICE_BURST))
    voice_refused: int = 0
    gap: float = 0.0
    """A running average of the time between the peer's control messages (heartbeats at
    least once a heartbeat interval): a peer short of CPU, or on a poor link, sends late."""

    voice: RTCDataChannel | None = None
    """Browser guests' voices relayed by their gateway (unordered, no retransmission)."""

    def send_voice(self, data: bytes) -> bool:
        """Send one relayed voice frame if the channel is open and not backed up (late audio
        is dropped, never queued)."""
        voice = self.voice
        if voice is None or voice.readyState != "open":
            return False
        if voice.bufferedAmount + len(data) > VOICE_QUEUE_MAX:
            return False
        voice.send(data)
        return True

    @property
    def label(self) -> str:
        """A short description for logs."""
        return f"{self.name!r} ({short_fingerprint(self.peer_id)})"

    def send(self, data: bytes) -> bool:
        """Send one message if the channel is open; False if its queue is over the cap (a
        peer that does not read what we send must not make us hold it all)."""
        if self.channel.readyState != "open":
            return True
        if self.channel.bufferedAmount + len(data) > SEND_QUEUE_MAX:
            return False
        self.channel.send(data)
        return True


def sdp_fingerprints(sdp: str) -> str:
    """Every ``a=fingerprint`` of an SDP, normalised: ``alg value;alg value`` in sorted order."""
    prints = sorted(
        " ".join(line.split(":", 1)[1].strip().lower().split())
        for line in sdp.splitlines()
        if line.startswith("a=fingerprint:")
    )
    if not prints:
        raise WireError("SDP has no DTLS fingerprint")
    return ";".join(prints)


class Early:
    """Control messages that arrive before the link is registered.

    aiortc emits a message as soon as its SCTP has it, even before the channel's ``open`` event
    has reached us, and drops it if nobody listens: on a link that delays or reorders packets
    the peer's first message (its join) can come before our side of the association is
    established, and without this it was acknowledged and lost for good (found with
    tests/e2e/impair.py).  Kept here, capped, and replayed once the link is up."""

    CAP = 64

    def __init__(self, channel: RTCDataChannel) -> None:
        self.messages: list[object] = []
        self.dropped = 0
        self._channel = channel
        channel.on("message", self._keep)

    def _keep(self, data: object) -> None:
        if len(self.messages) < self.CAP:
            self.messages.append(data)
        else:
            self.dropped += 1

    def release(self) -> list[object]:
        """Stop keeping; the messages kept so far, in order."""
        self._channel.remove_listener("message", self._keep)
        return self.messages


Channels = tuple[RTCPeerConnection, RTCDataChannel, RTCDataChannel, Early]
"""A connection, its control channel, its relayed-voice channel, and the control messages that
arrived before the link was registered."""


def _new_connection(peer: bytes, media: Media | None) -> Channels:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    channel = pc.createDataChannel("control", negotiated=True, id=0, ordered=True)
    early = Early(channel)
    # Browser guests' voices, relayed by their gateway: late audio is worthless, so unordered
    # and never retransmitted (see Mesh.send_voice).
    voice = pc.createDataChannel(
        VOICE_LABEL, negotiated=True, id=1, ordered=False, maxRetransmits=0
    )
    if media is not None:
        # Every connection carries one Opus audio transceiver from the start, so becoming a
        # speaker needs no renegotiation: a track only yields packets while its node speaks.
        transceiver = pc.addTransceiver("audio", direction="sendrecv")
        opus = [
            c
            for c in RTCRtpSender.getCapabilities("audio").codecs
            if c.mimeType.lower() == "audio/opus"
        ]
        transceiver.setCodecPreferences(opus)
        media.attach(peer, transceiver.sender)
        take_rtp(transceiver.receiver, functools.partial(media.on_rtp, peer))  # our jitter buffer
    return pc, channel, voice, early


class _AliveByAudio:
    """The node's media, with each RTP packet also noted as a sign of its peer's life."""

    def __init__(self, media: Media, seen: Callable[[bytes], None]) -> None:
        self._media = media
        self._seen = seen

    def attach(self, peer: bytes, sender: RTCRtpSender) -> None:
        self._media.attach(peer, sender)

    async def on_rtp(self, peer: bytes, packet: Any, arrival_time_ms: int = 0) -> None:
        self._seen(peer)
        await self._media.on_rtp(peer, packet, arrival_time_ms)

    def forget(self, peer: bytes) -> None:
        self._media.forget(peer)


def _check_description(message: Offer | Answer, session: Session) -> None:
    if message.sender != session.peer_id or message.receiver != session.identity.node_id:
        raise WireError(f"{message.TYPE} names the wrong keys")
    if sdp_fingerprints(message.sdp) != message.dtls_fingerprint:
        raise WireError(f"{message.TYPE}'s DTLS fingerprint differs from the signed one")


async def _set_remote(pc: RTCPeerConnection, sdp: str, kind: str) -> None:
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
    # aiortc raises ValueError, KeyError, InvalidStateError... on a bad SDP; a peer's bad input.
    except Exception as exc:
        raise WireError(f"unusable SDP {kind} ({type(exc).__name__})") from None


async def negotiate(session: Session, media: Media | None = None) -> Channels:
    """Exchange signed offer and answer over ``session``; return the connection being set up."""
    me, peer = session.identity.node_id, session.peer_id
    pc, channel, voice, early = _new_connection(peer, media)
    try:
        if me < peer:
            await pc.setLocalDescription(await pc.createOffer())
            nonce = os.urandom(wire.NONCE_SIZE)
            sdp = pc.localDescription.sdp
            offer = Offer(me, peer, nonce, sdp, sdp_fingerprints(sdp))
            await session.send(wire.seal_bytes(session.identity, offer))
            answer = await session.receive_signed(Answer)
            _check_description(answer, session)
            if answer.nonce != nonce:
                raise WireError("answer does not echo the offer's nonce")
            await _set_remote(pc, answer.sdp, "answer")
        else:
            offer = await session.receive_signed(Offer)
            _check_description(offer, session)
            await _set_remote(pc, offer.sdp, "offer")
            await pc.setLocalDescription(await pc.createAnswer())
            sdp = pc.localDescription.sdp
            answer = Answer(me, peer, offer.nonce, sdp, sdp_fingerprints(sdp))
            await session.send(wire.seal_bytes(session.identity, answer))
    except BaseException:
        await pc.close()
        raise
    return pc, channel, voice, early


async def _wait_open(pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
    opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_open() -> None:
        if not opened.done():
            opened.set_result(None)

    def on_state() -> None:
        if pc.connectionState in ("failed", "closed") and not opened.done():
            opened.set_exception(PeerError(f"connection {pc.connectionState}"))

    channel.on("open", on_open)
    pc.on("connectionstatechange", on_state)
    if channel.readyState == "open":
        return
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            await opened
    except TimeoutError:
        raise PeerError("control channel did not open in time") from None


class Mesh:
    """The set of live links of one node."""

    def __init__(
        self,
        identity: Identity,
        name: str,
        clock: Callable[[], float],
        handler: MeshHandler,
        *,
        penalty_s: float = 30.0,
    ) -> None:
        use_webrtc_sctp_timers()
        self.identity = identity
        self._penalty_s = penalty_s
        self.name = name
        self._clock = clock
        self._handler = handler
        self.links: dict[NodeId, Link] = {}
        self.media: Media | None = None
        self.source: str | None = None
        """The local address signaling connections go out from (None: the routing table's
        choice); a node given an interface uses that interface's address."""
        self._offences: dict[NodeId, float] = {}
        self._closing: set[asyncio.Task[Any]] = set()

    async def connect(
        self,
        host: str,
        port: int,
        identified: Callable[[NodeId], None] | None = None,
        expect: NodeId | None = None,
    ) -> Link:
        """Connect to the node listening for signaling at ``host:port``; ``identified`` is
        told its key as soon as the handshake proves it (before the WebRTC link is up).

        With ``expect``, hang up at once if the handshake names another key: an address
        someone gave for ``expect`` (a contact, an advert) must not link us to a third node,
        let alone replace our link to it."""
        session = await signaling.connect(host, port, self.identity, self.name, self.source)
        try:
            if expect is not None and session.peer_id != expect:
                raise PeerError(
                    f"{host}:{port} is {short_fingerprint(session.peer_id)}, "
                    f"not {short_fingerprint(expect)}"
                )
            if identified is not None:
                identified(session.peer_id)
            async with asyncio.timeout(signaling.SESSION_TIMEOUT):
                return await self._establish(session, inbound=False)
        finally:
            session.close()

    async def on_session(self, session: Session) -> None:
        """Serve an incoming signaling session (the signaling server's handler)."""
        await self._establish(session, inbound=True)

    async def _establish(self, session: Session, *, inbound: bool) -> Link:
        reason = self._handler.admit(session.peer_id) if inbound else None
        if reason is not None:
            # Say why before hanging up: a blocked member's app can tell its user.
            await session.send(
                wire.encode(wire.Error(ErrorCode.REFUSED, reason[: wire.REASON_MAX]))
            )
            raise PeerError(f"{signaling.describe(session)} refused: {reason}")
        media = _AliveByAudio(self.media, self._audio_seen) if self.media is not None else None
        pc, channel, voice, early = await negotiate(session, media)
        try:
            await _wait_open(pc, channel)
        except BaseException:
            await pc.close()
            raise
        link = Link(session.peer_id, session.peer.name, pc, channel, self._clock())
        link.voice = voice
        self._register(link, early)
        return link

    def _register(self, link: Link, early: Early) -> None:
        old = self.links.get(link.peer_id)
        if old is not None:
            self._forget(old)
        self.links[link.peer_id] = link
        link.channel.on("message", lambda data: self._receive(link, data))
        if link.voice is not None:
            link.voice.on("message", lambda data: self._receive_voice(link, data))
        link.channel.on("close", lambda: self._lost(link, "control channel closed"))
        link.pc.on("connectionstatechange", lambda: self._on_state(link))
        log.info("mesh: link up with %s", link.label)
        self._handler.on_link_up(link)
        kept = early.release()
        if early.dropped:
            self.penalize(link.peer_id, f"sent over {Early.CAP} messages before the link was up")
            return
        for data in kept:
            self._receive(link, data)

    def _on_state(self, link: Link) -> None:
        if link.pc.connectionState in ("failed", "closed"):
            self._lost(link, f"connection {link.pc.connectionState}")

    def _receive(self, link: Link, data: object) -> None:
        if self.links.get(link.peer_id) is not link:
            return
        if not isinstance(data, bytes):
            self.penalize(link.peer_id, "sent a text message on the control channel")
        elif len(data) > MESSAGE_MAX:
            self.penalize(link.peer_id, f"sent a {len(data)}-byte message (cap {MESSAGE_MAX})")
        elif not link.bucket.take(self._clock()):
            self.penalize(link.peer_id, f"sent more than {MESSAGE_RATE:.0f} messages a second")
        else:
            now = self._clock()
            link.gap += (now - link.last_seen - link.gap) / 8
            link.last_seen = now
            self._handler.on_message(link, data)

    def _receive_voice(self, link: Link, data: object) -> None:
        if self.links.get(link.peer_id) is not link:
            return
        if (
            isinstance(data, bytes)
            and len(data) <= VOICE_MAX
            and link.voice_bucket.take(self._clock())
        ):
            self._handler.on_voice(link, data)
        else:
            link.voice_refused += 1

    def send_voice(self, data: bytes, *, but: Collection[bytes] = ()) -> None:
        """Send a relayed voice frame to every linked peer (but those in ``but``)."""
        for link in list(self.links.values()):
            if link.peer_id not in but:
                link.send_voice(data)

    def penalize(self, peer_id: NodeId, reason: str, code: str = FLOODING) -> None:
        """Drop a peer that broke the caps (or, ``code`` ``misbehaved``, the protocol), tell
        it why and for how long, and remember when (see :meth:`misbehaved`)."""
        now = self._clock()
        if len(self._offences) >= OFFENCES_MAX:  # keys are free to make: bound what we keep
            self._offences = {p: t for p, t in self._offences.items() if now - t < PENALTY_MAX_S}
        self._offences[peer_id] = now
        link = self.links.get(peer_id)
        if link is not None:
            notice = f"{reason}; you can come back in {self._penalty_s:.0f} s"
            link.send(wire.encode(wire.Error(code, notice[: wire.REASON_MAX])))
            link.flush_before_close = True
        self.drop(peer_id, reason)

    def misbehaved(self, peer_id: NodeId, within: float) -> bool:
        """Whether ``peer_id`` was dropped for breaking the caps or the protocol in the last
        ``within`` s."""
        when = self._offences.get(peer_id)
        return when is not None and self._clock() - when < within

    def send(self, peer_id: NodeId, data: bytes) -> bool:
        """Send to one peer; False if there is no link."""
        link = self.links.get(peer_id)
        if link is None:
            return False
        self._send(link, data)
        return True

    def broadcast(self, data: bytes) -> None:
        """Send to every linked peer."""
        for link in list(self.links.values()):
            self._send(link, data)

    def _send(self, link: Link, data: bytes) -> None:
        if not link.send(data):
            self.drop(link.peer_id, f"stalled: over {SEND_QUEUE_MAX} bytes queued for it")

    def _audio_seen(self, peer: bytes) -> None:
        """Audio from ``peer`` is a sign of life too: a busy speaker whose heartbeats are late
        is still talking, and must not be dropped for lateness alone."""
        link = self.links.get(NodeId(peer))
        if link is not None:
            link.last_seen = self._clock()

    def check_liveness(
        self, now: float, timeout: float, before_drop: Callable[[NodeId], object] | None = None
    ) -> None:
        """Drop every peer silent for more than ``timeout`` seconds (``before_drop`` hears of
        each first: the dialer backs off before the drop makes the room want it again)."""
        for link in list(self.links.values()):
            if now - link.last_seen > timeout:
                if before_drop is not None:
                    before_drop(link.peer_id)
                self.drop(link.peer_id, f"silent for {now - link.last_seen:.1f} s")

    def drop(self, peer_id: NodeId, reason: str) -> None:
        """Close a peer's link and report it down."""
        link = self.links.get(peer_id)
        if link is not None:
            self._lost(link, reason)

    def _lost(self, link: Link, reason: str) -> None:
        if self.links.get(link.peer_id) is not link:
            return
        del self.links[link.peer_id]
        log.info("mesh: link down with %s: %s", link.label, reason)
        if self.media is not None:
            self.media.forget(link.peer_id)
        self._forget(link)
        self._handler.on_link_down(link.peer_id, reason)

    def _forget(self, link: Link) -> None:
        task = asyncio.ensure_future(self._close(link))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(link: Link) -> None:
        if link.flush_before_close:  # let the notice of why it was dropped reach the peer
            await asyncio.sleep(FLUSH_NOTICE_S)
        await link.pc.close()

    async def close(self) -> None:
        """Close every link."""
        for link in list(self.links.values()):
            self._forget(link)
        self.links.clear()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._closing, return_exceptions=True)
