"""Heard by: each member tells each speaker how loud it plays it, and a speaker learns who
hears it, so "can everyone hear me?" need not be asked aloud.

As a listener, :meth:`Hearing.report` sends each speaker the loudest 20 ms of its voice as
played here over the last second (the shell measures; nothing is sent for a voice not heard).
As a speaker, :meth:`Hearing.on_heard` files those reports and :meth:`Hearing.tick`, once it
has spoken a moment, says how many of the room hear it and who does not, or only very quietly
(a :class:`~p2pspaces.core.events.HeardBy` event, when that changes).  Sans I/O: levels and
``now`` come in, messages and events go out through the session's context.

In a large room, listeners that hear through a relay have no link to most speakers, so they
report nothing and are not counted (the count is of those who hear the speaker straight); a
report that travels back through the relays, signed, is left for later.
"""

from __future__ import annotations

from collections.abc import Mapping

from p2pspaces.core import wire
from p2pspaces.core.context import SessionContext
from p2pspaces.core.errors import PeerError
from p2pspaces.core.events import HeardBy
from p2pspaces.core.identity import NODE_ID_SIZE, NodeId
from p2pspaces.core.room import RoomState

HEARD_DB = -60.0
"""A listener reports a voice whose loudest 20 ms in a second reached this (dBFS)."""
QUIET_DB = -40.0
"""Below this, a voice is heard very quietly (a talker's loudest moments are usually -25 to
-10 dBFS)."""
FRESH_S = 3.0
"""Reports this recent count: a listener that said nothing for this long does not hear us."""
SETTLE_S = 2.0
"""A speaker is told only after speaking this long (its voice takes a moment to arrive)."""
REPORTS_KEPT = 4
"""Recent reports kept per listener (about one a second)."""


class Hearing:
    """Both sides of "heard by" for one session."""

    def __init__(self, ctx: SessionContext) -> None:
        self._ctx = ctx
        self._reports: dict[NodeId, list[tuple[float, int]]] = {}
        """Per listener: (when, level) of its recent reports about our voice."""
        self._expected_since: dict[NodeId, float] = {}
        """When each member was first expected to hear us (a newcomer gets a moment)."""
        self._speaking_since: float | None = None
        self._told: tuple[int, int, tuple[str, ...], tuple[str, ...]] | None = None

    def clear(self) -> None:
        """We left the room: nothing carries over."""
        self._reports.clear()
        self._expected_since.clear()
        self._speaking_since = None
        self._told = None

    # --- as a listener -------------------------------------------------------------------

    def report(self, levels: Mapping[bytes, float], guest: bytes = b"") -> None:
        """Tell each speaker in ``levels`` how loud we (or our browser ``guest``) played it
        over the last second; a voice below :data:`HEARD_DB` was not heard, and is not told."""
        ctx = self._ctx
        state = ctx.state
        if state is None:
            return
        for speaker, level in levels.items():
            node = NodeId(speaker)
            if level < HEARD_DB or node == ctx.me or node not in state.members:
                continue
            if state.members[node].gateway is not None:
                continue  # a browser guest speaking: its voice came through its gateway
            db = max(-127, min(0, round(level)))
            ctx.send(node, wire.encode(wire.Heard(state.room_id, db, guest)))

    # --- as a speaker --------------------------------------------------------------------

    def on_heard(self, peer: NodeId, message: wire.Heard, now: float) -> None:
        """A member (or a gateway, for its guest) says how loud it plays us."""
        state = self._ctx.state
        if state is None or message.room_id != state.room_id:
            raise PeerError("a hearing report for another room")
        listener = peer
        if message.guest:
            if len(message.guest) != NODE_ID_SIZE or state.gateway_of(message.guest) != peer:
                raise PeerError("a hearing report for someone else's guest")
            listener = NodeId(message.guest)
        if listener not in state.members or listener == self._ctx.me:
            raise PeerError("a hearing report from outside the room")
        kept = self._reports.setdefault(listener, [])
        kept.append((now, message.level_db))
        del kept[:-REPORTS_KEPT]

    def tick(self, speaking: bool, now: float) -> None:
        """Once a second: while we have been speaking a moment, say who hears us (if that
        changed since we last said)."""
        ctx = self._ctx
        state = ctx.state
        if state is None or not speaking:
            self._speaking_since = None
            return
        if self._speaking_since is None:
            self._speaking_since = now
        members = state.members
        for node in members:
            self._expected_since.setdefault(node, now)
        for table in (self._reports, self._expected_since):
            for gone in [n for n in table if n not in members]:
                del table[gone]
        if now - self._speaking_since < SETTLE_S:
            return
        heard, quiet, deaf = self._count(state, now)
        of = heard + len(quiet) + len(deaf)
        told = (heard, of, tuple(sorted(quiet)), tuple(sorted(deaf)))
        if told != self._told:
            self._told = told
            ctx.emit(HeardBy(state.room_id, *told))

    def _count(self, state: RoomState, now: float) -> tuple[int, list[str], list[str]]:
        """How many hear us, and the names of those who hear us quietly or not at all."""
        me = self._ctx.me
        heard, quiet, deaf = 0, [], []
        for node, member in state.members.items():
            if node == me or (member.gateway is not None and node not in self._reports):
                continue  # a guest counts once its gateway reports for it
            if member.via is not None and node not in self._reports:
                continue  # hears us through a relay: no link to report on (see above)
            since = self._expected_since[node]
            fresh = [level for at, level in self._reports.get(node, []) if now - at <= FRESH_S]
            if fresh and max(fresh) >= QUIET_DB:
                heard += 1
            elif fresh:
                quiet.append(member.name)
            elif now - since >= FRESH_S:
                deaf.append(member.name)
            # else: just arrived, its first report on its way: not counted yet
        return heard, quiet, deaf
