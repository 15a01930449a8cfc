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

from p2pspaces.core.identity import SIGNATURE_SIZE, Identity, verify

DOMAIN_VOICE = b"p2pspaces/1 voice packet\x00"
TIMESTAMP_WRAP = 1 << 32
REPLAY_WINDOW = 48_000
"""RTP timestamp units (one second at 48 kHz) within which a late packet is still taken."""
SEEN_KEPT = 128
"""Timestamps remembered to refuse second copies (over two seconds of 20 ms packets)."""


def _signed(room_id: bytes, timestamp: int, payload: bytes) -> bytes:
    return room_id + struct.pack("!I", timestamp % TIMESTAMP_WRAP) + payload


def sign_packet(identity: Identity, room_id: bytes, timestamp: int, payload: bytes) -> bytes:
    """The speaker's signature on one packet of its voice in ``room_id``."""
    return identity.sign(DOMAIN_VOICE, _signed(room_id, timestamp, payload))


class VoiceChecker:
    """A listener's check of one speaker's relayed packets: the signature, and each timestamp
    taken once and only forward (within :data:`REPLAY_WINDOW` of the newest)."""

    def __init__(self, speaker: bytes, room_id: bytes) -> None:
        self.speaker = speaker
        self.room_id = room_id
        self._newest: int | None = None
        self._seen: list[int] = []
        self.refused = 0

    def check(self, timestamp: int, payload: bytes, signature: bytes) -> bool:
        """Whether to play this packet (False: forged, altered, replayed or a second copy)."""
        timestamp %= TIMESTAMP_WRAP
        if self._newest is not None:
            behind = (self._newest - timestamp) % TIMESTAMP_WRAP
            if behind < TIMESTAMP_WRAP // 2 and (behind > REPLAY_WINDOW or timestamp in self._seen):
                self.refused += 1
                return False
        message = _signed(self.room_id, timestamp, payload)
        if len(signature) != SIGNATURE_SIZE or not verify(
            self.speaker, signature, DOMAIN_VOICE, message
        ):
            self.refused += 1
            return False
        ahead = self._newest is None or (timestamp - self._newest) % TIMESTAMP_WRAP < (
            TIMESTAMP_WRAP // 2
        )
        if ahead:
            self._newest = timestamp
        self._seen.append(timestamp)
        if len(self._seen) > SEEN_KEPT:
            del self._seen[0]
        return True


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
