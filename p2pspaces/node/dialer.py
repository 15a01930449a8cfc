"""The dialer: links to the peers the session wants, each retried with a doubling backoff.

A member's link to its authority, a speaker's audio links, a rival authority after a partition:
the session says whom it wants (:meth:`Linking.wanted`); the dialer finds an address
(an advert), dials, and after a failure waits 0.25 s, 0.5 s, ... up to
:attr:`Timing.reconnect_max_s` before trying that peer again.  A link dropped because the peer
fell silent is redialed after such a backoff too, not at once: a node that is short of CPU
makes its peers late, and redialing them all at once (each handshake and DTLS set-up more
load) would turn lateness into a storm.  Every wait is jittered (0.5x to 1.5x), so that the
peers of one busy node do not all come back in the same instant.  A voice at capacity (see
:mod:`p2pspaces.node.load`) is asked again only after about 20 s.  A refusal with a reason
(blocked, dropped for flooding) is reported once, in words.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from p2pspaces.core.errors import PeerError
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.node.load import AT_CAPACITY, BUSY_BACKOFF_S

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.25
SILENCE_MEMORY_S = 60.0
"""A link that falls silent again within this long waits twice as long before the redial."""
BACKOFFS_MAX = 4096
"""Peers whose backoff is remembered; a peer not wanted any more is forgotten."""


class Reachable(Protocol):
    """Where a node listens: its mDNS advert, or the signed contact the room relayed."""

    @property
    def addresses(self) -> tuple[str, ...]: ...

    @property
    def port(self) -> int: ...


def parse_address(ref: str) -> tuple[str, int] | None:
    """``ADDR:PORT`` (an IPv4 address and a port) as a pair, or None for anything else (a
    room's title or id)."""
    host, colon, port = ref.strip().rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return None
    return host, int(port)


def address_problem(ref: str) -> str | None:
    """Why ``ref``, which looks like ``ADDR:PORT`` (digits, dots, a colon), is not a valid one;
    None if it is valid or does not look like an address at all (a title may be anything)."""
    host, colon, port = ref.strip().rpartition(":")
    if not colon or not port.isdigit() or not host or host.strip("0123456789.") != "":
        return None
    if not 0 < int(port) < 65536:
        return f"{ref.strip()} is not a valid address: the port must be 1 to 65535"
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return f"{ref.strip()} is not a valid address: {host} is not an IPv4 address"
    return None


def why(exc: BaseException) -> str:
    """A failure in words."""
    if isinstance(exc, PeerError):
        return exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "nothing listens there (is p2pspaces running there, and the port right?)"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()  # asyncio's strerror carries a Python tuple
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.split(" (")[0].lower()
    return str(exc) or type(exc).__name__


async def connect(mesh: Mesh, peer: NodeId, advert: Reachable) -> Link:
    """Dial ``peer`` at each of its addresses until it answers there (an address where another
    node answers is hung up on at the handshake, so no one's contact can link us elsewhere)."""
    errors = []
    for address in advert.addresses:
        try:
            return await mesh.connect(address, advert.port, expect=peer)
        except (PeerError, OSError, TimeoutError) as exc:
            errors.append(f"{address}: {why(exc)}")
    raise PeerError("; ".join(errors) or "the advert has no address")


class Dialer:
    """Dials wanted peers, one attempt at a time per peer, with backoff."""

    def __init__(
        self,
        mesh: Mesh,
        clock: Callable[[], float],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        on_refused: Callable[[NodeId, str], None],
        backoff_max_s: float,
    ) -> None:
        self._mesh = mesh
        self._clock = clock
        self._spawn = spawn
        self._on_refused = on_refused
        self._backoff_max_s = backoff_max_s
        self._dialing: set[NodeId] = set()
        self._next_try: dict[NodeId, tuple[float, float]] = {}
        self._silences: dict[NodeId, tuple[float, float]] = {}
        """Per peer: when its link last fell silent, and the backoff that followed."""

    def ensure(self, wanted: dict[NodeId, Reachable | None]) -> None:
        """Dial every wanted peer that has no link, no dial under way and no backoff pending."""
        now = self._clock()
        for peer in list(self._next_try):
            if peer not in wanted:
                del self._next_try[peer]
        for peer, advert in wanted.items():
            if advert is None or peer in self._mesh.links or peer in self._dialing:
                continue
            at, _ = self._next_try.get(peer, (0.0, 0.0))
            if now >= at:
                self._dialing.add(peer)
                self._spawn(self._dial(peer, advert))

    def dial_now(self, peer: NodeId, advert: Reachable) -> asyncio.Task[Link]:
        """Dial ``peer`` at once, for a caller that awaits the outcome (a join); meanwhile
        :meth:`ensure` leaves that peer alone."""
        self._dialing.add(peer)
        task = asyncio.ensure_future(connect(self._mesh, peer, advert))
        task.add_done_callback(lambda _: self._dialing.discard(peer))
        return task

    def dial_address(
        self, host: str, port: int, identified: Callable[[NodeId], None]
    ) -> asyncio.Task[Link]:
        """Dial whoever listens at ``host:port`` (a join by address); once the handshake names
        the peer, :meth:`ensure` leaves it alone, as for :meth:`dial_now`."""
        named: list[NodeId] = []

        def on_identified(peer: NodeId) -> None:
            named.append(peer)
            self._dialing.add(peer)
            identified(peer)

        task = asyncio.ensure_future(self._mesh.connect(host, port, on_identified))
        task.add_done_callback(lambda _: self._dialing.difference_update(named))
        return task

    def fell_silent(self, peer: NodeId) -> float:
        """``peer``'s link was dropped for silence: wait (backed off, jittered) before
        dialing it again, longer each time it happens within a minute; returns the wait."""
        now = self._clock()
        at, last = self._silences.get(peer, (0.0, 0.0))
        previous = last if now - at < SILENCE_MEMORY_S else 0.0
        if len(self._silences) >= BACKOFFS_MAX:
            self._silences.pop(next(iter(self._silences)))
        wait = self._back_off(peer, previous)
        self._silences[peer] = (now, self._next_try[peer][1])
        return wait

    def forgive(self, peer: NodeId) -> None:
        """Dial ``peer`` at the next chance, whatever the backoff (it just became a voice)."""
        self._next_try.pop(peer, None)

    def _back_off(self, peer: NodeId, last: float | None = None, floor: float = 0.0) -> float:
        if last is None:
            _, last = self._next_try.get(peer, (0.0, 0.0))
        backoff = max(floor, min(self._backoff_max_s, last * 2 if last else FIRST_BACKOFF_S))
        wait = backoff * random.uniform(0.5, 1.5)  # noqa: S311 - spreading, not secrecy
        if len(self._next_try) >= BACKOFFS_MAX:
            self._next_try.pop(next(iter(self._next_try)))
        self._next_try[peer] = (self._clock() + wait, backoff)
        return wait

    async def _dial(self, peer: NodeId, advert: Reachable) -> None:
        try:
            await connect(self._mesh, peer, advert)
            self._next_try.pop(peer, None)
        except (PeerError, OSError, TimeoutError) as exc:
            busy = isinstance(exc, PeerError) and AT_CAPACITY in exc.reason
            backoff = self._back_off(peer, floor=BUSY_BACKOFF_S if busy else 0.0)
            log.info(
                "link to %s failed (retry in %.2f s): %s",
                short_fingerprint(peer),
                backoff,
                why(exc),
            )
            if isinstance(exc, PeerError) and "refused" in exc.reason:
                self._on_refused(peer, exc.reason)
        finally:
            self._dialing.discard(peer)
