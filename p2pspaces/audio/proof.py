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
TWO_BYTE_PROFILE = 0x1000
"""RFC 8285: the two-byte header extension profile."""


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


def extension_block(element_id: int, signature: bytes) -> bytes:
    """The RTP header extension block (RFC 8285, two-byte form) carrying ``signature``:
    profile, length in 32-bit words, then the element (id, length, data), zero-padded."""
    if not 1 <= element_id <= 255 or len(signature) > 255:
        raise ValueError("a two-byte header extension element has an id 1-255, data <= 255")
    element = bytes([element_id, len(signature)]) + signature
    element += b"\x00" * (-len(element) % 4)
    return struct.pack("!HH", TWO_BYTE_PROFILE, len(element) // 4) + element


def signature_in(block: bytes, element_id: int) -> bytes | None:
    """The signature element ``element_id`` in a two-byte header extension block, or None
    (another profile, a malformed block, or no such element)."""
    if len(block) < 4:
        return None
    profile, words = struct.unpack_from("!HH", block)
    body = block[4 : 4 + 4 * words]
    if profile != TWO_BYTE_PROFILE or len(body) != 4 * words:
        return None
    at = 0
    while at + 2 <= len(body):
        element, size = body[at], body[at + 1]
        if element == 0:  # padding
            at += 1
            continue
        data = body[at + 2 : at + 2 + size]
        if len(data) != size:
            return None
        if element == element_id:
            return data
        at += 2 + size
    return None
