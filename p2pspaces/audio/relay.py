"""Relayed voices at one node: what comes through a relay is checked, played and passed on
(issue 22; docs/design-notes.md, "Relays").

A packet on a relay link names its voice in the CSRC field and carries the voice's proof
ahead of the Opus payload (:mod:`p2pspaces.audio.proof`).  A node takes such a packet

* straight from the voice itself (or, for a browser guest, from its gateway), when it relays
  for others and hears the voices straight (DTLS-SRTP already binds that link to the voice:
  no check needed), or
* from its own relay, the one the signed state names (``via``), and then only with a valid
  signature of a voice that may speak now, each timestamp once and only forward.

Anything else is refused and counted: a relay the state does not name, a packet from a voice
while we hear through a relay, a forged, altered or replayed one.  A relayed stream is filed
under its voice with the signed pts for its timing (``pts / 960`` orders it: a relay cannot
reorder what it forwards without the timestamps showing it), so the jitter buffer, the meters
and the volumes treat it as if it came straight.

A relay passes each packet it took on to its own listeners unchanged (proof and payload),
written by the direct path of :class:`~p2pspaces.audio.fanout.Outlet`: no decode, no
re-encode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.fanout import Outlet
from p2pspaces.audio.proof import VoiceChecker, voice_tag, without_proof

CHECKERS_MAX = 64
"""Voices whose replay windows are kept (a room has a few dozen at most)."""
PACKETS_PER_S_MAX = 100
"""A voice sends 50 packets a second; more than twice that through one node is refused
before any signature is checked or any packet passed on (a relay cannot make us, or our
listeners, spend CPU on a flood)."""


class Plan(Protocol):
    """What the signed state says about relays, as this node sees it now."""

    def parent(self) -> bytes | None:
        """The relay we hear the room through (None: straight from each voice)."""

    def children(self) -> Collection[bytes]:
        """The listeners we relay the room to."""

    def voices(self, tag: int) -> list[bytes]:
        """The voices that may speak now whose CSRC tag is ``tag``."""

    def room(self) -> bytes | None:
        """The room we are in (what voices sign)."""

    def signer(self, voice: bytes) -> bytes:
        """Whose key signs ``voice``'s packets: its own, or a browser guest's gateway's."""


@dataclass(frozen=True, slots=True)
class Relayed:
    """One relayed packet, as the jitter buffer takes it."""

    voice: bytes
    sequence_number: int
    timestamp: int
    payload: bytes
    """The Opus payload, proof removed."""
    data: bytes
    """Proof and payload: what a relay passes on."""


class RelayPath:
    """Takes relayed packets (see the module's docs) and passes them on."""

    def __init__(self, plan: Plan, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self._clock = clock
        self._checkers: dict[bytes, VoiceChecker] = {}
        self._rates: dict[bytes, tuple[float, float]] = {}
        """Per voice: the packets it may still send now, and when that was worked out."""
        self.refused = 0
        """Relayed packets refused: not from our relay, forged, altered or replayed."""
        self.forwarded = 0

    def take(self, peer: bytes, tag: int, data: bytes) -> Relayed | None:
        """The packet ``peer`` sent with CSRC ``tag`` if it is to be played, else None."""
        plan = self.plan
        parent = plan.parent()
        opened = without_proof(data)
        voices = plan.voices(tag)
        if opened is None or not voices:
            self.refused += 1
            return None
        pts, signature, payload = opened
        straight = [v for v in voices if plan.signer(v) == peer] if parent is None else []
        if not straight and (parent is None or peer != parent):
            self.refused += 1  # from neither the voice nor our relay: spends nothing
            return None
        if not self._within_rate(peer + voices[0]):
            self.refused += 1  # before the signature check and any passing on
            return None
        voice = straight[0] if straight else self._check(voices, pts, payload, signature)
        if voice is None:
            self.refused += 1
            return None
        seq = (pts // FRAME_SAMPLES) & 0xFFFF
        return Relayed(voice, seq, pts, payload, data)

    def _within_rate(self, voice: bytes) -> bool:
        """A token bucket per sender and voice (``voice`` is both keys):
        :data:`PACKETS_PER_S_MAX` a second, and a burst of as many (what a stalled node
        catches up on after a second)."""
        now = self._clock()
        tokens, last = self._rates.get(voice, (float(PACKETS_PER_S_MAX), now))
        tokens = min(float(PACKETS_PER_S_MAX), tokens + (now - last) * PACKETS_PER_S_MAX)
        if len(self._rates) >= CHECKERS_MAX and voice not in self._rates:
            self._rates.clear()
        allowed = tokens >= 1.0
        self._rates[voice] = (tokens - 1.0 if allowed else tokens, now)
        return allowed

    def _check(
        self, voices: list[bytes], pts: int, payload: bytes, signature: bytes
    ) -> bytes | None:
        room = self.plan.room()
        if room is None:
            return None
        for voice in voices:
            checker = self._checkers.get(voice)
            signer = self.plan.signer(voice)
            if checker is None or checker.room_id != room or checker.speaker != signer:
                if len(self._checkers) >= CHECKERS_MAX:  # voices came and went
                    self._checkers.clear()
                checker = self._checkers[voice] = VoiceChecker(signer, room, voice)
            if checker.check(pts, payload, signature, self._clock()):
                return voice
        return None

    async def forward(self, packet: Relayed, outlets: dict[bytes, Outlet]) -> None:
        """Pass ``packet`` on to each of our listeners linked now."""
        tag = voice_tag(packet.voice)
        for child in self.plan.children():
            outlet = outlets.get(child)
            if outlet is not None:
                await outlet.send(packet.data, packet.timestamp, tag)
                self.forwarded += 1
