"""The keeper of this node's own mDNS advert: in step with the room, at most once a second.

A room's authority also re-announces every :attr:`Timing.reannounce_s`: after a partition heals,
the other side's caches may have expired our records, and browsers back off their own queries,
so without this the two halves could stay strangers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from p2pspaces.core.ledger import Replica
from p2pspaces.core.room import Role, birth_of
from p2pspaces.net.discovery import Discovery, RoomAdvert, WebPorts

UPDATE_GAP_S = 1.0


def room_advert(
    replica: Replica | None, is_authority: bool, web: WebPorts | None = None
) -> RoomAdvert | None:
    """What this node should say about its room: only the authority advertises a live room
    (with where it serves phones, if it does)."""
    if replica is None or not is_authority or replica.state.ended:
        return None
    state = replica.state
    speakers = sum(1 for m in state.members.values() if m.role != Role.LISTENER)
    listeners = len(state.members) - speakers
    birth = birth_of(replica.genesis)
    return RoomAdvert(
        state.room_id, state.title, speakers, listeners, state.host, birth, state.recording, web
    )


class AdvertKeeper:
    """Keeps one node's advert matching ``wanted()``."""

    def __init__(
        self,
        discovery: Discovery,
        name: str,
        wanted: Callable[[], RoomAdvert | None],
        reannounce_s: float,
    ) -> None:
        self._discovery = discovery
        self._name = name
        self._wanted = wanted
        self._reannounce_s = reannounce_s
        self._dirty = asyncio.Event()
        self.current: RoomAdvert | None = None

    def changed(self) -> None:
        """The room changed: update the advert soon."""
        self._dirty.set()

    async def run(self, port: int) -> None:
        """Publish the advert, then keep it in step until cancelled."""
        await self._discovery.advertise(self._name, port, None)
        while True:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see SessionTimers.run
                async with asyncio.timeout(self._reannounce_s):
                    await self._dirty.wait()
            self._dirty.clear()
            wanted = self._wanted()
            if wanted != self.current or wanted is not None:
                self.current = wanted
                await self._discovery.advertise(self._name, port, wanted)
            await asyncio.sleep(UPDATE_GAP_S)
