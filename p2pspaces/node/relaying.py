"""The room's relay plan as this node's audio path reads it (see :mod:`p2pspaces.audio.relay`
and :mod:`p2pspaces.core.relays`): whom we hear through, whom we pass the voices on to, whom
our own voice skips, and our signature on each packet a relay passes on."""

from __future__ import annotations

from collections.abc import Collection

from p2pspaces.audio.proof import sign_packet, voice_tag, with_proof
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
            for node, member in state.members.items():
                if member.gateway is None and state.may_speak(node):
                    by_tag.setdefault(voice_tag(node), []).append(node)
            self._voices = (state, by_tag)
        return self._voices[1].get(tag, [])

    def room(self) -> bytes | None:
        state = self._session.state
        return state.room_id if state is not None else None

    # --- where our voice goes -------------------------------------------------------------

    def relayed(self, peer: bytes) -> bool:
        return peer in self._plan().via

    def relays(self, peer: bytes) -> bool:
        return peer in self._plan().children

    def prove(self, pts: int, payload: bytes) -> tuple[int, bytes] | None:
        room = self.room()
        if room is None:
            return None
        signature = sign_packet(self._identity, room, pts, payload)
        return self._tag, with_proof(pts, signature, payload)
