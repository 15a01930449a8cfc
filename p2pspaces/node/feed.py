"""The node's event stream: what happens, for the front end and the watchers beside it.

The queue is bounded (:attr:`NodeConfig.events_max`): a front end that stops reading loses the
oldest events, counted, and the room goes on; watchers (the web gateway) are called first, each
failure logged and the others still called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from p2pspaces.core.events import Event

log = logging.getLogger(__name__)


class EventFeed:
    """Events to watchers, then to one bounded queue the front end reads."""

    def __init__(self, most: int) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(most)
        """Everything that happens, for the front end (bounded: see :attr:`dropped`)."""
        self.dropped = 0
        """Events dropped, oldest first, because the front end did not read them."""
        self.watchers: list[Callable[[Event], None]] = []
        """Called with every event, before the front end reads it (the web gateway follows
        the room this way)."""

    def emit(self, event: Event) -> None:
        """Send an event to the watchers and the front end."""
        for watch in self.watchers:
            try:
                watch(event)
            except Exception:
                log.exception("an event watcher failed on %s", event.NAME)
        if self.queue.full():  # a front end that stopped reading: the room goes on
            self.queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1:
                log.warning("the front end is not reading events; dropping the oldest")
        self.queue.put_nowait(event)
