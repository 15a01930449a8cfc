"""What every test gets: a check that it left no thread or asyncio task of its own behind
(python-zeroconf's ``verify_threads_ended`` is the model).  A node that is stopped must stop
everything it started; a leak here is a laptop that never lets go of a socket."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest

THREADS_GRACE_S = 3.0
"""Threads get this long after a test to end (zeroconf's engine and aiortc's encoder threads
end shortly after the node that owned them is closed)."""


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREADS_GRACE_S
    while True:
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"the test left threads running: {sorted(t.name for t in left)}"


@pytest.fixture(autouse=True)
async def _no_task_leaks() -> AsyncIterator[None]:
    """For async tests: every task the test started is done when it ends."""
    before = asyncio.all_tasks()
    yield
    for _ in range(20):  # a stop() may leave callbacks of closed tasks to run
        left = [t for t in asyncio.all_tasks() - before if not t.done()]
        left = [t for t in left if t is not asyncio.current_task()]
        if not left:
            return
        await asyncio.sleep(0.05)
    running = sorted(getattr(t.get_coro(), "__qualname__", t.get_name()) for t in left)
    raise AssertionError(f"the test left tasks running: {running}")
