"""A node short of CPU sheds work in a chosen order, so that overload degrades and never storms.

:class:`LoadGauge` measures how late the node's event loop runs: on a voice, a task sleeps
50 ms at a time and notes how much later it woke.  Over a 2 s window, a mean lateness above 20 ms is
*busy* (the node cannot keep its 20 ms audio frames on time); it is calm again only once the
mean falls under 5 ms (hysteresis: no flapping at the edge).

:class:`Capacity` is the order in which a busy voice (a speaker or co-host sending audio; not
the room's authority, whose links are also the room's control plane) gives work up:

1. It takes no new listeners: their links are refused with :data:`AT_CAPACITY`, and it dials
   none itself.  A refused listener waits :data:`BUSY_BACKOFF_S` (jittered) before it asks
   again, and is told once, in words, that it may not hear that voice for now.
2. If it stays busy for :data:`SHED_AFTER_S`, it lets go of its newest listener link, one per
   window while it is still over :data:`BUSY_MS`, so that those who were listening first keep
   hearing it; then it takes no more listeners than it kept for :data:`CEILING_S`, and then a
   few more at a time while it stays calm.

The room's state, the authority, co-hosts and other voices are never shed: a listener that
does not hear one speaker is still in the room, sees it, and hears everyone else.  (Relays,
issue 22's next layer, are how such listeners will still hear that speaker.)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from p2pspaces.core.identity import NodeId
from p2pspaces.core.session import RoomSession

TICK_S = 0.05
"""How often the gauge wakes to see how late it is."""
IDLE_S = 1.0
"""How often a node that is not a voice looks again whether it has become one."""
WINDOW_S = 2.0
"""The lateness is averaged over this long."""
BUSY_MS = 20.0
"""A mean lateness above this (a frame's worth) is busy."""
CALM_MS = 5.0
"""Busy ends once the mean lateness is below this."""
SHED_AFTER_S = 3.0
"""A voice busy this long lets go of its newest listener link (then one per window, so that
the gauge sees what each one gave back)."""
CEILING_S = 60.0
"""After shedding, a voice takes no more listeners than it kept for this long (without it,
calm would take back those it shed, and be busy again: a slow flap)."""
GROW_S = 10.0
"""Then, while it stays calm, it takes a quarter more (at least one more) every this long."""
KEEP_AT_LEAST = 1
"""Listener links a voice never sheds (if even these are too many, shedding does not help)."""
BUSY_BACKOFF_S = 20.0
"""A listener refused by a voice at capacity asks again after about this long (0.5x-1.5x)."""
AT_CAPACITY = "at capacity: this speaker's laptop cannot send to more listeners now"
"""The reason a voice at capacity refuses listeners' links with (a shed listener, whose link
is simply closed, is told it when it dials again)."""


class LoadGauge:
    """How late this node runs: busy or not, and since when."""

    def __init__(self) -> None:
        self._lags: deque[float] = deque(maxlen=round(WINDOW_S / TICK_S))
        self.busy = False
        self.busy_since: float | None = None
        self.over = False
        """The mean lateness is above :data:`BUSY_MS` now (busy, and not getting better)."""

    def note(self, lag_ms: float, now: float) -> bool:
        """The gauge woke ``lag_ms`` late at ``now``; returns whether the node is busy."""
        self._lags.append(max(0.0, lag_ms))
        full = len(self._lags) == self._lags.maxlen
        mean = sum(self._lags) / len(self._lags)
        self.over = full and mean > BUSY_MS
        if not self.busy and full and mean > BUSY_MS:
            self.busy, self.busy_since = True, now
        elif self.busy and mean < CALM_MS:
            self.busy, self.busy_since = False, None
        return self.busy

    def busy_for(self, now: float) -> float:
        """How long the node has been busy (0 when it is not)."""
        return 0.0 if self.busy_since is None else now - self.busy_since

    async def run(self, clock: Callable[[], float], wanted: Callable[[], bool]) -> None:
        """For ever: sleep a tick and note how late it woke, while ``wanted()`` (only a voice
        has anything to give up; others look again once a second and keep no window)."""
        while True:
            if not wanted():
                self._lags.clear()
                self.busy, self.busy_since, self.over = False, None, False
                await asyncio.sleep(IDLE_S)
                continue
            asked = clock() + TICK_S
            await asyncio.sleep(TICK_S)
            now = clock()
            self.note((now - asked) * 1000, now)


class Capacity:
    """What a busy voice gives up, in order (see the module's docstring)."""

    def __init__(
        self, session: RoomSession, gauge: LoadGauge, linked: Callable[[], Iterable[NodeId]]
    ) -> None:
        self._session = session
        self.gauge = gauge
        self._linked = linked
        self._ceiling: tuple[int, float] | None = None
        """After shedding: (listener links kept, until when no more are taken)."""
        self._shed_at = -WINDOW_S

    @property
    def voice(self) -> bool:
        """We send audio and are not the authority (whose links are the control plane)."""
        session = self._session
        return not session.is_authority and session.may_speak(session.me)

    @property
    def full(self) -> bool:
        """We are such a voice and cannot keep up."""
        return self.gauge.busy and self.voice

    def is_listener(self, peer: NodeId) -> bool:
        """``peer`` only listens: not the authority, a co-host or a voice of the room (a
        muted speaker is still one, and so is the gateway of a guest on stage), nor the
        gateway of browser guests (it plays the room to each of them), nor a relay (it
        passes the room on to others, who would lose it too)."""
        state = self._session.state
        if state is None or peer == state.authority or peer in state.cohosts:
            return False
        linking = self._session.linking
        if peer in linking.plan().children:
            return False
        return peer in state.members and peer not in linking.voices() | linking.gateways()

    def listeners(self) -> list[NodeId]:
        """Our listener links, oldest first."""
        return [peer for peer in self._linked() if self.is_listener(peer)]

    def takes_more(self, now: float) -> bool:
        """Whether we take another listener now."""
        if not self.voice:  # not (or no longer) a voice: nothing to give up
            self._ceiling = None
            return True
        if self.gauge.busy:
            return False
        ceiling = self._ceiling
        if ceiling is None:
            return True
        kept, until = ceiling
        if now >= until:  # calm since: a few more
            kept += max(1, kept // 4)
            self._ceiling = ceiling = (kept, now + GROW_S)
        return len(self.listeners()) < kept

    def refusal(self, peer: NodeId, now: float) -> str | None:
        """Why a link from ``peer`` is refused now, or None."""
        if self.is_listener(peer) and peer not in self._linked() and not self.takes_more(now):
            return AT_CAPACITY
        return None

    def shed(self, now: float) -> NodeId | None:
        """The listener link to let go of now (the newest), if we have been full long enough
        and are still over :data:`BUSY_MS`."""
        if not self.full or not self.gauge.over or self.gauge.busy_for(now) < SHED_AFTER_S:
            return None
        if now - self._shed_at < WINDOW_S:
            return None
        listeners = self.listeners()
        if len(listeners) <= KEEP_AT_LEAST:
            return None
        self._shed_at = now
        self._ceiling = (len(listeners) - 1, now + CEILING_S)
        return listeners[-1]
