"""The session's timers on the node's clock.

One task sleeps until the session's next due time, or until something wakes it (a message or a
command changed what is due), then calls the session back.  A task that wakes well after the
time it asked for was starved (short of CPU): it tells the session first, so that the silence it
did not hear is not taken for its peers' (docs/design-notes.md, "a node's own lateness").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from p2pspaces.core.session import RoomSession
from p2pspaces.node.links import LATE_S


class SessionTimers:
    """Calls the session back when its next timer is due; :meth:`wake` to look again."""

    def __init__(
        self, session: RoomSession, clock: Callable[[], float], pump: Callable[[], None]
    ) -> None:
        self._session, self._clock, self._pump = session, clock, pump
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """What is due may have changed: look again."""
        self._wake.set()

    async def run(self) -> None:
        """For ever: sleep until due (or woken), then let the session act and pump it."""
        session = self._session
        while True:
            due = session.next_timer()
            wait = None if due is None else max(0.0, due - self._clock())
            self._wake.clear()
            # asyncio.timeout, not wait_for: wait_for can swallow a cancel that arrives as the
            # event is set (bpo-42130), and stopping would then wait for this task for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            now = self._clock()
            if due is None or now < due:
                continue
            if now - due > LATE_S:  # we were starved: our lateness is not others' silence
                session.fell_behind(now - due, now)
            session.handle_timer(now)
            self._pump()
