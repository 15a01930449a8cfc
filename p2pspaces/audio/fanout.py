"""Encode once, send to many.

aiortc encodes once per peer connection by default (96 kbit/s stereo, its own threads and a
pure-Python level computation per encoder), so a speaker's CPU grows with every listener.  Its
RTCRtpSender also accepts already-encoded ``av.Packet``s from a track and then only packetizes
them (RFC 7587), which is our way in: :class:`Broadcaster` encodes each 20 ms frame once and
hands the same bytes to one :class:`PacketTrack` per peer.
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.opus import Encoder, Pcm

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
QUEUE_FRAMES = 5
"""A peer that cannot take 100 ms of packets loses the oldest rather than delaying the rest."""


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
        """The next packet; waits (sending nothing) while this node is not speaking."""
        return await self._queue.get()


class Broadcaster:
    """One encoder, many tracks."""

    def __init__(self, bitrate: int = 40_000) -> None:
        self._encoder = Encoder(bitrate)
        self.tracks: dict[bytes, PacketTrack] = {}

    @property
    def frames_encoded(self) -> int:
        """How many frames the encoder has encoded."""
        return self._encoder.encoded

    def track_for(self, peer: bytes) -> PacketTrack:
        """The track that feeds ``peer``'s connection (made on first use)."""
        track = self.tracks.get(peer)
        if track is None:
            track = self.tracks[peer] = PacketTrack()
        return track

    def forget(self, peer: bytes) -> None:
        """Stop feeding a peer whose connection is gone."""
        track = self.tracks.pop(peer, None)
        if track is not None:
            track.stop()

    def send(self, frame: Pcm, pts: int) -> bytes:
        """Encode ``frame`` once and queue it for every peer; returns the packet."""
        payload = self._encoder.encode(frame)
        for track in self.tracks.values():
            track.offer(payload, pts)
        return payload
