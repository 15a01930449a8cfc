"""The room's relay plan as this node's audio path reads it (see :mod:`p2pspaces.audio.relay`
and :mod:`p2pspaces.core.relays`): whom we hear through, whom we pass the voices on to, whom
our own voice skips, and our signature on each packet a relay passes on; and a watch on our
relay (:class:`RelayWatch`): one that passes nothing on while the room's voices speak is
reported, and we hear straight."""

from __future__ import annotations

import time
from collections.abc import Collection

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.proof import TIMESTAMP_WRAP, sign_packet, voice_tag, with_proof
from p2pspaces.core.identity import Identity
from p2pspaces.core.linking import NO_RELAYS, RelayPlan
from p2pspaces.core.room import RoomState
from p2pspaces.core.session import RoomSession


class RoomRelays:
    """Both sides of relaying for one node: :class:`~p2pspaces.audio.relay.Plan` (what we
    hear and pass on) and :class:`~p2pspaces.audio.fanout.Routes` (where our voice goes)."""

    def __init__(self, session: RoomSession, identity: Identity) -> None:
        self._session = session
        self._identity = identity
        self._tag = voice_tag(identity.node_id)
        # Our packets' signed timestamps count on from the wall clock (a whole frame), so
        # that they keep rising when this node restarts: a listener takes each only forward.
        now = int(time.time() * SAMPLE_RATE)
        self._base = now - now % FRAME_SAMPLES
        self._voices: tuple[RoomState | None, dict[int, list[bytes]]] = (None, {})

    def _plan(self) -> RelayPlan:
        return self._session.linking.plan() if self._session.state is not None else NO_RELAYS

    # --- what we hear and pass on ---------------------------------------------------------

    def parent(self) -> bytes | None:
        return self._plan().via.get(self._session.me)

    def children(self) -> Collection[bytes]:
        return self._plan().children.get(self._session.me, ())

    def voices(self, tag: int) -> list[bytes]:
        state = self._session.state
        if state is None:
            return []
        if self._voices[0] is not state:
            by_tag: dict[int, list[bytes]] = {}
            for node in state.members:
                if state.may_speak(node):  # a browser guest's too: its gateway signs
                    by_tag.setdefault(voice_tag(node), []).append(node)
            self._voices = (state, by_tag)
        return self._voices[1].get(tag, [])

    def room(self) -> bytes | None:
        state = self._session.state
        return state.room_id if state is not None else None

    def signer(self, voice: bytes) -> bytes:
        state = self._session.state
        gateway = state.gateway_of(voice) if state is not None else None
        return gateway if gateway is not None else voice

    # --- where our voice goes -------------------------------------------------------------

    def relayed(self, peer: bytes) -> bool:
        return peer in self._plan().via

    def relays(self, peer: bytes) -> bool:
        return peer in self._plan().children

    def prove(self, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        room = self.room()
        if room is None:
            return None
        pts = (self._base + pts) % TIMESTAMP_WRAP
        signature = sign_packet(self._identity, room, pts, payload)
        return self._tag, with_proof(pts, signature, payload)

    def prove_for(self, voice: bytes, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        room = self.room()
        if room is None:
            return None
        signature = sign_packet(self._identity, room, pts, payload, voice)
        return voice_tag(voice), with_proof(pts, signature, payload)


SILENT_S = 1.5
"""Nothing from any voice through our relay for this long, while a voice may speak (voices
send 50 packets a second while unmuted, silence included): the relay passes nothing on (it
died, or keeps the audio back)."""
FIRST_AUDIO_S = 5.0
"""The same before anything came through a new relay (its link is still being set up)."""
ASK_AGAIN_S = 30.0


class RelayWatch:
    """Notices that our relay passes nothing on (see :data:`SILENT_S`); the authority then
    checks that the voices reach it, moves us and gives that relay no one new for a while."""

    def __init__(self, session: RoomSession, heard_at: dict[bytes, float]) -> None:
        self._session = session
        self._heard_at = heard_at
        self._parent: bytes | None = None
        self._since = 0.0
        self._asked = -ASK_AGAIN_S

    def silent(self, now: float) -> bytes | None:
        """Our relay, once it has passed nothing on for :data:`SILENT_S` (or
        :data:`FIRST_AUDIO_S`, if nothing came through it yet) while a voice may speak (at
        most every :data:`ASK_AGAIN_S`); else None."""
        session = self._session
        state = session.state
        plan = session.linking.plan() if state is not None else NO_RELAYS
        parent = plan.via.get(session.me)
        if parent != self._parent:
            self._parent, self._since = parent, now
        if parent is None or state is None:
            return None
        voices = [
            node
            for node, member in state.members.items()
            if member.gateway is None and node != session.me and state.may_speak(node)
        ]
        if not voices:
            self._since = now  # nothing expected
            return None
        heard = max(self._heard_at.get(v, -1.0) for v in voices)
        wait = SILENT_S if heard >= self._since else FIRST_AUDIO_S
        if now - max(heard, self._since) < wait or now - self._asked < ASK_AGAIN_S:
            return None
        self._asked = now
        return parent
