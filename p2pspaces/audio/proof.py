"""A speaker's signature on each voice packet, so that a relay can forward its voice and never
put words in its mouth (issue 22's relays; docs/design-notes.md, "Relays").

A packet that comes straight from a speaker is bound to it by DTLS-SRTP.  One that comes
through a relay is not: the relay could change it, invent it, or replay an old one.  So the
speaker signs, once per packet and for every connection at once, its room, the packet's RTP
timestamp and the Opus payload (Ed25519, domain-separated); the relay forwards the signature
with the payload unchanged, in a two-byte RTP header extension element (RFC 8285: a one-byte
element holds at most 16 bytes, a signature is 64); a listener checks it against the key the
signed room state names for that speaker, and takes each timestamp once, only forward (an old
packet replayed by a relay is dropped, as is a second copy).

Costs are measured by ``scripts/bench_core.py`` (sign and check, per packet).
"""

from __future__ import annotations

import struct
from collections import deque

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.core.identity import SIGNATURE_SIZE, Identity, verify

DOMAIN_VOICE = b"p2pspaces/1 voice packet\x00"
TIMESTAMP_WRAP = 1 << 32
REPLAY_WINDOW = 48_000
"""RTP timestamp units (one second at 48 kHz) within which a late packet is still taken."""
HELD_MAX_S = 2.0
"""How much later than the voice's recent packets a packet may arrive (a stalled speaker's
clock falls behind by its stall: a few hundred milliseconds, not seconds)."""
LEAD_SECONDS = 10
"""Seconds of arrivals (with packets) whose least lateness is kept."""
SEEN_KEPT = 128
"""Timestamps remembered to refuse second copies (over two seconds of 20 ms packets)."""


def _signed(room_id: bytes, voice: bytes, timestamp: int, payload: bytes) -> bytes:
    return room_id + voice + struct.pack("!I", timestamp % TIMESTAMP_WRAP) + payload


def sign_packet(
    identity: Identity, room_id: bytes, timestamp: int, payload: bytes, voice: bytes = b""
) -> bytes:
    """The signature on one packet of ``voice`` (our own, by default; a browser guest's, as
    its gateway) in ``room_id``."""
    voice = voice or identity.node_id
    return identity.sign(DOMAIN_VOICE, _signed(room_id, voice, timestamp, payload))


class VoiceChecker:
    """A listener's check of one speaker's relayed packets: the signature; each timestamp
    taken once and only forward (within :data:`REPLAY_WINDOW` of the newest); and, when the
    arrival time is given, no packet held back: its media time must not arrive more than
    :data:`HELD_MAX_S` later than the voice's packets of the last seconds did (a relay
    cannot keep a sentence and play it later, after another question)."""

    def __init__(self, speaker: bytes, room_id: bytes, voice: bytes = b"") -> None:
        self.speaker = speaker
        """Whose key signs: the voice's own, or a browser guest's gateway's."""
        self.voice = voice or speaker
        self.room_id = room_id
        self._newest: int | None = None
        self._unwrapped = 0
        """The newest timestamp, counted on past the 32-bit wraps."""
        self._seen: list[int] = []
        self._leads: deque[tuple[int, float]] = deque(maxlen=LEAD_SECONDS)
        """Per second of arrivals: the least (arrival - media time) of its packets."""
        self.refused = 0

    def check(
        self, timestamp: int, payload: bytes, signature: bytes, arrival: float | None = None
    ) -> bool:
        """Whether to play this packet (False: forged, altered, replayed, a second copy, or
        held back); ``arrival`` is the receiver's clock, in seconds."""
        timestamp %= TIMESTAMP_WRAP
        step = 0
        if self._newest is not None:
            step = (timestamp - self._newest) % TIMESTAMP_WRAP
            if step >= TIMESTAMP_WRAP // 2:
                step -= TIMESTAMP_WRAP
            if step <= 0 and (-step > REPLAY_WINDOW or timestamp in self._seen):
                self.refused += 1
                return False
        lateness = None
        if arrival is not None:
            lateness = arrival - (self._unwrapped + step) / SAMPLE_RATE
            if self._leads and lateness - min(lead for _, lead in self._leads) > HELD_MAX_S:
                self.refused += 1
                return False
        message = _signed(self.room_id, self.voice, timestamp, payload)
        if len(signature) != SIGNATURE_SIZE or not verify(
            self.speaker, signature, DOMAIN_VOICE, message
        ):
            self.refused += 1
            return False
        if self._newest is None or step > 0:
            self._newest = timestamp
            self._unwrapped += step
        self._seen.append(timestamp)
        if len(self._seen) > SEEN_KEPT:
            del self._seen[0]
        if arrival is not None and lateness is not None:
            self._note_lead(int(arrival), lateness)
        return True

    def _note_lead(self, second: int, lateness: float) -> None:
        leads = self._leads
        if leads and leads[-1][0] == second:
            if lateness < leads[-1][1]:
                leads[-1] = (second, lateness)
        else:
            leads.append((second, lateness))


PROOF = struct.Struct(f"!I{SIGNATURE_SIZE}s")
"""What a relayed packet's payload starts with: the frame's pts and the voice's signature."""


def with_proof(pts: int, signature: bytes, payload: bytes) -> bytes:
    """A relayed packet's payload: the proof, then the Opus payload."""
    return PROOF.pack(pts % TIMESTAMP_WRAP, signature) + payload


def without_proof(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(pts, signature, Opus payload) of a relayed packet's payload, or None if too short."""
    if len(data) <= PROOF.size:
        return None
    pts, signature = PROOF.unpack_from(data)
    return pts, signature, data[PROOF.size :]


def voice_tag(voice: bytes) -> int:
    """The 32-bit CSRC that names ``voice`` on relay links (its key's first four bytes; a
    listener tries every voice of the room with that tag, so a clash costs one more check)."""
    return int.from_bytes(voice[:4], "big")
