"""Getting into a room: from the lobby or by address, dialing, then waiting for the verified
snapshot that makes us a member; a host taking back the room it kept hosting until it crashed;
and joining again by ourselves when the host whose Space died under us starts one again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from p2pspaces.core import lifecycle
from p2pspaces.core.errors import AlreadyTold, CommandError, ErrorCode, PeerError
from p2pspaces.core.events import Ended, ErrorEvent, Event, Notice, RoomFound
from p2pspaces.core.identity import NodeId
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.session import RoomSession
from p2pspaces.core.settings import Timing
from p2pspaces.core.wire import RoomId
from p2pspaces.net.mesh import Link, Mesh
from p2pspaces.node.dialer import address_problem, parse_address, why
from p2pspaces.node.directory import RoomDirectory, RoomListing
from p2pspaces.node.home import HostedRoom
from p2pspaces.node.links import LinkKeeper
from p2pspaces.node.people import PeopleBook

log = logging.getLogger(__name__)

REJOIN_WINDOW_S = 600.0
"""How long after our Space died with its host we join that host's next Space by ourselves."""


class Shell(Protocol):
    """What joining needs from the node it is part of."""

    session: RoomSession
    links: LinkKeeper
    mesh: Mesh
    directory: RoomDirectory
    people: PeopleBook
    hosted: HostedRoom
    timing: Timing
    clock: Callable[[], float]

    @property
    def node_id(self) -> NodeId: ...

    def pump(self) -> None: ...

    def emit(self, event: Event) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None: ...


class Joining:
    """The node's joins; :meth:`moved` is called each time the session may have moved on."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell
        self._moved = asyncio.Event()
        self._error = ""
        """Why the last join was refused, as the session told it (a join_failed event)."""
        self._orphaned: tuple[NodeId, float, bytes] | None = None
        """The authority whose silence ended our Space, until when its return is awaited, and
        the room that ended."""

    def moved(self) -> None:
        """The session may have moved on: a waiting join looks again."""
        self._moved.set()

    async def take_back(self, title: str) -> RoomId | None:
        """As a host restarted after a crash: rejoin and reclaim our last room of ``title`` if
        a co-host kept it going; None if it is not live any more."""
        shell = self._shell
        saved = shell.hosted.room_titled(title)
        if saved is None:
            return None
        with contextlib.suppress(CommandError):  # not live any more: host a new room
            listing = await shell.directory.wait_for(saved, shell.timing.resume_wait_s)
            log.warning("rejoining and reclaiming our room %r, kept going meanwhile", title)
            return await self._join(listing, reclaim=True)
        return None

    async def join(self, ref: str, wait: float) -> RoomId:
        """See :meth:`Node.join`."""
        shell = self._shell
        if not lifecycle.may_start(shell.session.phase):
            raise CommandError("already in a room; leave it first")
        shell.people.entering_room()
        address = parse_address(ref)
        if address is not None:
            return await self._join_address(*address)
        problem = address_problem(ref)
        if problem is not None:
            raise CommandError(problem)
        listing = await shell.directory.wait_for(ref, wait)
        # Our own room, kept by a co-host since we crashed: join it and take it back.
        return await self._join(listing, reclaim=listing.room.host == shell.node_id)

    async def _join_address(self, host: str, port: int) -> RoomId:
        shell = self._shell
        self._error = ""

        def identified(peer: NodeId) -> None:
            if peer == shell.node_id:
                raise PeerError("that address is this node's own")
            shell.session.join(None, peer, shell.clock())
            shell.pump()

        dial = shell.links.dialer.dial_address(host, port, identified)
        return await self._await_join(f"{host}:{port}", dial)

    async def _join(self, listing: RoomListing, *, reclaim: bool = False) -> RoomId:
        shell = self._shell
        advert = listing.advert
        room_id = RoomId(listing.room.room_id)
        self._error = ""
        shell.session.join(room_id, advert.node_id, shell.clock(), reclaim=reclaim)
        # Dial through the dialer, so that it does not dial the same peer again meanwhile: two
        # links racing to one peer can leave the one we asked to join on closed.
        dial = None
        if advert.node_id not in shell.mesh.links:
            dial = shell.links.dialer.dial_now(advert.node_id, advert)
        shell.pump()
        return await self._await_join(repr(listing.room.title), dial)

    async def _await_join(self, label: str, dial: asyncio.Future[Link] | None) -> RoomId:
        """Wait for the dial, then for the snapshot that makes us a member."""
        session = self._shell.session
        try:
            async with asyncio.timeout(self._shell.timing.join_timeout_s):
                if dial is not None:
                    await dial
                while self._joining():
                    self._moved.clear()
                    await self._moved.wait()
        except (TimeoutError, PeerError, OSError) as exc:
            if dial is not None and not dial.done():
                dial.cancel()
            told = self._joining()  # then the session says why, in a join_failed event
            session.abandon_join(why(exc))
            self._shell.pump()
            error = AlreadyTold if told else CommandError
            raise error(f"could not join {label}: {why(exc)}") from None
        except asyncio.CancelledError:
            if dial is not None:
                dial.cancel()
            raise
        replica = session.replica if lifecycle.in_room(session.phase) else None
        if replica is None:
            reason = self._error or "the join did not complete"
            error = AlreadyTold if self._error else CommandError
            raise error(f"could not join {label}: {reason}")
        return replica.room_id

    def _joining(self) -> bool:
        session = self._shell.session
        phase = session.phase
        return phase is Phase.JOINING or (phase is Phase.REJOINING and session.replica is None)

    # --- what the node hears -------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """The session's news: a refused join says why; a Space that died with its host is
        remembered, to join that host's next one."""
        if isinstance(event, ErrorEvent) and event.code == ErrorCode.JOIN_FAILED:
            self._error = event.reason
        elif isinstance(event, Ended) and event.orphaned_by is not None:
            until = self._shell.clock() + REJOIN_WINDOW_S
            self._orphaned = (NodeId(event.orphaned_by), until, event.room)
            for found in self._shell.directory.listed():  # it may have restarted already
                self.on_found(found)

    def on_found(self, event: RoomFound) -> None:
        """A room appeared in the lobby: if its host is the one whose Space died under us (its
        laptop restarted), join it again by ourselves."""
        orphaned = self._orphaned
        if orphaned is None or event.host != orphaned[0] or event.room == orphaned[2]:
            return  # not that host, or the dead room's own advert (not yet expired)
        self._orphaned = None
        shell = self._shell
        if shell.clock() > orphaned[1] or not lifecycle.may_start(shell.session.phase):
            return
        shell.emit(Notice(f"{event.host_name} is back: joining {event.title!r} again."))

        async def rejoin() -> None:
            with contextlib.suppress(CommandError):  # said in the join's own error event
                await self.join(event.room.hex(), wait=10.0)

        shell.spawn(rejoin())
