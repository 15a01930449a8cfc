"""The keeper of a node's links: the ones the session wants are dialed, the ones it no longer
needs are closed, and links it hangs up get their last messages out first."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from p2pspaces.core import lifecycle
from p2pspaces.core.context import Hangup
from p2pspaces.core.errors import ErrorCode
from p2pspaces.core.events import ErrorEvent, Event, Notice
from p2pspaces.core.identity import NodeId
from p2pspaces.core.member import MISBEHAVED
from p2pspaces.core.session import NOT_A_MEMBER, RoomSession
from p2pspaces.core.settings import Timing
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.node.dialer import Dialer, Reachable
from p2pspaces.node.directory import RoomDirectory
from p2pspaces.node.load import AT_CAPACITY, BUSY_BACKOFF_S, Capacity

REFUSALS_MAX = 64
"""Distinct refusal reasons reported (each once)."""


log = logging.getLogger(__name__)

LATE_KEPT = 64
"""Late wakings remembered (more than a window's worth only under constant starvation)."""
LATE_S = 0.25
"""A watch that wakes this much later than asked counts the difference as time we lost."""


class Lateness:
    """How far behind this node fell lately: each watch notes how late it woke, and the sum
    over the last ``window_s`` is what a peer's silence is forgiven (it spoke; we did not
    listen)."""

    def __init__(self, window_s: float) -> None:
        self._window_s = window_s
        self._late: deque[tuple[float, float]] = deque(maxlen=LATE_KEPT)

    def note(self, now: float, late_s: float) -> float:
        """The watch woke ``late_s`` late at ``now``; returns the allowance now."""
        if late_s > LATE_S:
            if not self._late:
                log.warning("this node fell %.1f s behind (short of CPU?); links wait", late_s)
            self._late.append((now, late_s))
        while self._late and now - self._late[0][0] > self._window_s + self._late[0][1]:
            self._late.popleft()
        return sum(late for _, late in self._late)


class MeshNews:
    """The mesh's handler: who may link, links up and down, and what comes over them, passed
    to the session (and a browser guest's relayed voice to whoever plays it)."""

    def __init__(
        self,
        session: RoomSession,
        timing: Timing,
        clock: Callable[[], float],
        pump: Callable[[], None],
        *,
        misbehaved: Callable[[NodeId, float], bool],
        voice: Callable[[Link, bytes], None],
        capacity: Capacity,
    ) -> None:
        self._session = session
        self._timing = timing
        self._clock = clock
        self._pump = pump
        self._misbehaved = misbehaved
        self._voice = voice
        self._capacity = capacity
        self.stopped = False
        """The node is stopping: links that go now change nothing in the room."""

    def admit(self, peer_id: NodeId) -> str | None:
        """Who may connect: see :meth:`RoomSession.admit`; flooders are kept out a while, and
        a voice at capacity takes no more listeners (see :class:`Capacity`)."""
        penalty = self._timing.penalty_s
        if self._misbehaved(peer_id, penalty):
            return f"dropped for misbehaving; try again in {penalty:.0f} s"
        return self._session.linking.admit(peer_id) or self._capacity.refusal(
            peer_id, self._clock()
        )

    def on_link_up(self, link: Link) -> None:
        """A peer's control channel is open."""
        if not self.stopped:
            self._session.link_up(link.peer_id, self._clock())
            self._pump()

    def on_link_down(self, peer_id: NodeId, reason: str) -> None:
        """A peer's link is gone."""
        if self.stopped:
            return
        flooded = self._misbehaved(peer_id, self._timing.penalty_s)
        self._session.link_down(peer_id, reason, self._clock(), misbehaved=flooded)
        self._pump()

    def on_message(self, link: Link, data: bytes) -> None:
        """One control message (size and rate already checked by the mesh)."""
        self._session.receive(link.peer_id, data, self._clock())
        self._pump()

    def on_voice(self, link: Link, data: bytes) -> None:
        """A browser guest's voice frame relayed by ``link``'s node."""
        self._voice(link, data)

    def refused(self, peer: NodeId, reason: str) -> None:
        """A peer would not link with us."""
        self._session.link_refused(peer, reason)
        self._pump()


class LinkKeeper:
    """Matches the mesh's links to what the session wants."""

    def __init__(
        self,
        session: RoomSession,
        mesh: Mesh,
        directory: RoomDirectory,
        timing: Timing,
        *,
        clock: Callable[[], float],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        emit: Callable[[Event], None],
        on_refused: Callable[[NodeId, str], None],
        capacity: Capacity,
    ) -> None:
        self._session = session
        self._mesh = mesh
        self._capacity = capacity
        self._clock = clock
        self._busy_told: set[NodeId] = set()
        self._voices_seen: frozenset[NodeId] = frozenset()
        self._directory = directory
        self._timing = timing
        self._spawn = spawn
        self._emit = emit
        self._on_refused = on_refused
        self._refusals: set[str] = set()
        self.dialer = Dialer(mesh, clock, spawn, self._refused, timing.reconnect_max_s)
        self.stopped = False

    def ensure(self, *, drop_unneeded: bool = False) -> None:
        """Dial the peers the session wants; with ``drop_unneeded`` (when the state changed,
        and once a heartbeat: not at once, so a link being set up can start), close audio
        links it no longer needs."""
        if self.stopped:
            return
        session = self._session
        wanted = session.linking.wanted()
        state = session.state
        in_room = state is not None and lifecycle.in_room(session.phase)
        if drop_unneeded and in_room and state is not None and not session.is_authority:
            for peer in list(self._mesh.links):
                if peer not in wanted and peer != state.authority:
                    self._mesh.drop(peer, "no longer needed for audio")
        dial: dict[NodeId, Reachable | None] = {
            peer: self.reach(peer) for peer in wanted if session.linking.should_dial(peer)
        }
        voices = session.linking.voices()
        if voices != self._voices_seen:  # the stage changed: a refusal from before may be moot
            for peer in voices:
                self.dialer.forgive(peer)
            self._voices_seen = voices
        listing = self._directory.rooms.get(state.room_id) if state is not None else None
        if in_room and state is not None and listing is not None:
            advertiser = listing.advert.node_id
            # An authority meeting its room advertised by another (a healed partition), or a
            # member whose authority is gone while the room is advertised by someone else:
            # link to the advertiser; heartbeats then show who holds the newer epoch.
            rival = session.linking.wants_rival(state.room_id, advertiser)
            moved = not session.is_authority and advertiser not in (state.authority, session.me)
            if rival or moved:
                dial[advertiser] = listing.advert
        self.dialer.ensure(dial)

    def reach(self, peer: NodeId) -> Reachable | None:
        """Where ``peer`` listens: its mDNS advert, else the contact the room relayed (all
        there is on a network that filters multicast)."""
        return self._directory.advert_of(peer) or self._session.contact_of(peer)

    async def watch(self, clock: Callable[[], float]) -> None:
        """Drop silent links (aiortc alone notices only after ~30 s) and redial, for ever.

        Our own lateness is not our peers' silence: when this node falls behind (short of CPU,
        or suspended), the time it lost is added to what a peer may stay silent (see
        :class:`Lateness`), so that a busy node does not drop its links and then spend what
        CPU it has on redialing them all."""
        timing = self._timing
        late = Lateness(timing.peer_timeout_s)
        last = clock()
        while True:
            await asyncio.sleep(timing.heartbeat_s)
            now = clock()
            allowance = late.note(now, now - last - timing.heartbeat_s)
            last = now
            self._mesh.check_liveness(
                now, timing.peer_timeout_s + allowance, self.dialer.fell_silent
            )
            shed = self._capacity.shed(now)
            if shed is not None:
                log.warning("short of CPU: letting go of the newest listener's link")
                self._mesh.drop(shed, AT_CAPACITY)
            self.ensure(drop_unneeded=True)

    def authority_address(self) -> str | None:
        """``ADDR:PORT`` of our room's authority's signaling endpoint, if we know it (another
        node's, as the room relayed it or its advert says)."""
        state = self._session.state
        if state is None or state.authority == self._session.me:
            return None
        reach = self.reach(state.authority)
        if reach is None or not reach.addresses:
            return None
        return f"{reach.addresses[0]}:{reach.port}"

    def hangup(self, order: Hangup) -> None:
        """Close a link the session hung up (after a flush, if it asked for one); a peer
        that misbehaved is kept out for the penalty time."""
        if order.penalty:
            self._mesh.penalize(order.peer, order.reason, MISBEHAVED)
            return
        if not order.flush:
            self._mesh.drop(order.peer, order.reason)
            return

        async def after_flush() -> None:
            await asyncio.sleep(self._timing.flush_s)
            self._mesh.drop(order.peer, order.reason)

        self._spawn(after_flush())

    async def flush(self) -> None:
        """Give queued control messages a moment to leave before links close."""
        step = 0.02
        for _ in range(int(self._timing.flush_s / step)):
            if not any(link.channel.bufferedAmount for link in self._mesh.links.values()):
                break
            await asyncio.sleep(step)
        await asyncio.sleep(0.05)

    def _refused(self, peer: NodeId, reason: str) -> None:
        self._on_refused(peer, reason)
        if AT_CAPACITY in reason:
            if peer not in self._busy_told and len(self._busy_told) < REFUSALS_MAX:
                self._busy_told.add(peer)
                name = self._session.name_of(peer)
                self._emit(
                    Notice(
                        f"{name}'s laptop is at capacity: you may not hear {name} for now "
                        f"(asking again about every {BUSY_BACKOFF_S:.0f} s)."
                    )
                )
            return
        if NOT_A_MEMBER in reason:  # we joined a moment ago: it has not heard yet
            return
        if reason not in self._refusals and len(self._refusals) < REFUSALS_MAX:
            self._refusals.add(reason)
            self._emit(ErrorEvent(ErrorCode.LINK_REFUSED, reason))
