"""The terminal app: ``p2pspaces start`` at a terminal.

A Textual app over one :class:`~p2pspaces.node.Node`: it reads the node's event stream and
calls its command API, nothing else.  The lobby lists the Spaces on the network; joining or
hosting opens the room; the room ending (or leaving it) returns to the lobby with a notice.
What happens to people is told in words (:mod:`p2pspaces.app.words`), in the room's activity
log and, when it needs attention, as a notice.  Logging goes to a file in the node's home, so
that nothing scribbles over the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections import deque
from collections.abc import Coroutine, Iterable
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from p2pspaces.app.tui.dialogs import AddressDialog, ChooseRoom, Confirm, HelpScreen, HostDialog
from p2pspaces.app.tui.keys import LOBBY, ROOM
from p2pspaces.app.tui.lobby import LobbyScreen
from p2pspaces.app.tui.room import RoomScreen
from p2pspaces.app.words import Line, Narrator, Tone
from p2pspaces.core import room
from p2pspaces.core.errors import AlreadyTold, CommandError
from p2pspaces.core.events import (
    Ended,
    Event,
    HeardBy,
    Joined,
    Left,
    Quiet,
    ReactionReceived,
    Ready,
    RoomFound,
    RoomLost,
    Speaking,
    StateChanged,
    WebReady,
)
from p2pspaces.node import Node
from p2pspaces.node.directory import AmbiguousRoom

log = logging.getLogger(__name__)
TOLD_MAX = 2000
NOTIFY = {Tone.ASK: "information", Tone.WARN: "warning", Tone.ERROR: "error"}


class SpacesApp(App[int]):
    """p2pspaces in a terminal."""

    CSS_PATH = "spaces.tcss"
    TITLE = "p2pspaces"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit_app", "Quit", priority=True),
        Binding("ctrl+c", "quit_app", "Quit", show=False, priority=True),
        Binding("f1", "help", "Help", show=False),
    ]

    def __init__(
        self,
        node: Node,
        *,
        host_title: str | None = None,
        join_ref: str | None = None,
        max_speakers: int = room.DEFAULT_MAX_SPEAKERS,
        start_node: bool = True,
        notices: tuple[str, ...] = (),
    ) -> None:
        """``notices`` are shown once the app is up (e.g. why there is no microphone)."""
        super().__init__()
        self.node = node
        self.narrator = Narrator(node.node_id, keys=True)
        self.lobby = LobbyScreen()
        self.room: RoomScreen | None = None
        self._first = (host_title, join_ref, max_speakers)
        self._start_node = start_node
        self._pump: asyncio.Task[None] | None = None
        self.told: deque[Line] = deque(maxlen=TOLD_MAX)
        """Every sentence told to the user, newest last (what the activity log shows)."""
        self._quitting = False
        self.notices = notices

    # --- life cycle ----------------------------------------------------------------------

    async def on_mount(self) -> None:
        await self.push_screen(self.lobby)
        self.lobby.set_me(self.node.name, self.node.node_id)
        self._pump = asyncio.ensure_future(self._pump_events())
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._terminated)
        for notice in self.notices:
            self.notify(notice, severity="warning", markup=False, timeout=10)
        if self._start_node:
            await self.node.start()
        host_title, join_ref, max_speakers = self._first
        if host_title is not None:
            self.do(self.node.host(host_title, max_speakers))
        elif join_ref is not None:
            self.join_room(join_ref)

    def on_unmount(self) -> None:
        """The app is closing: stop showing events (the node may still emit some)."""
        if self._pump is not None:
            self._pump.cancel()

    def _terminated(self) -> None:
        self.run_worker(self._close(), exclusive=True, group="quit")

    async def _close(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        await self.node.stop()
        if self._pump is not None:
            self._pump.cancel()
        self.exit(0)

    async def action_quit_app(self) -> None:
        """Leave the Space cleanly and quit (a host with no co-host is asked first)."""
        if self._needs_confirmation():

            def answer(yes: bool | None) -> None:
                if yes:
                    self.run_worker(self._close(), group="quit")

            self.push_screen(
                Confirm(
                    "You are the host and there is no co-host: quitting ends the Space for "
                    "everyone. Quit anyway?",
                    "End and quit",
                ),
                answer,
            )
            return
        await self._close()

    async def action_leave_room(self) -> None:
        """Leave the Space, back to the lobby (a host with no co-host is asked first)."""
        if self.node.replica is None:
            return
        if self._needs_confirmation():

            def answer(yes: bool | None) -> None:
                if yes:
                    self.do(self.node.leave())

            self.push_screen(
                Confirm("You host this Space and there is no co-host: leaving ends it. Leave?",
                        "End the Space"),
                answer,
            )  # fmt: skip
            return
        self.do(self.node.leave())

    def _needs_confirmation(self) -> bool:
        replica = self.node.replica
        if replica is None or not self.node.is_authority:
            return False
        return not [c for c in replica.state.cohosts if c in replica.state.members]

    def action_mic_check(self) -> None:
        """Record a few seconds of the microphone and play them back, as the room hears it."""
        self.do(self.node.voice.mic_check())

    def action_help(self) -> None:
        """Every key, in one place."""
        self.push_screen(HelpScreen())

    # --- commands (the screens call these) -----------------------------------------------

    def do(self, work: Coroutine[Any, Any, object], done: str | None = None) -> None:
        """Run a node command; a refusal becomes a notice, never a traceback."""

        async def run() -> None:
            try:
                await work
            except AlreadyTold:
                return
            except CommandError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            if done:
                self.notify(done, markup=False)

        self.run_worker(run(), group="commands")

    def join_room(self, ref: str) -> None:
        """Join by id, title or address; if a title names two rooms, ask which."""

        async def run() -> None:
            titles = {room.room.hex(): room.title for room in self.node.directory.listed()}
            self.notify(f"Joining {titles.get(ref, ref)[:40]}…", markup=False, timeout=3)
            try:
                await self.node.join(ref)
            except AmbiguousRoom as exc:
                self.push_screen(ChooseRoom(ref, exc.candidates), self._chosen)
            except AlreadyTold:
                return  # the join_failed event's toast says why
            except CommandError as exc:
                self.notify(str(exc), severity="error", markup=False, timeout=8)

        self.run_worker(run(), group="commands")

    def _chosen(self, room_id: str | None) -> None:
        if room_id is not None:
            self.join_room(room_id)

    def ask_host(self) -> None:
        """Ask for a title and host a Space."""

        def answer(choice: tuple[str, int] | None) -> None:
            if choice is not None:
                self.do(self.node.host(*choice))

        self.push_screen(HostDialog(), answer)

    def ask_address(self) -> None:
        """Ask for an address and join the Space there."""

        def answer(address: str | None) -> None:
            if address is not None:
                self.join_room(address)

        self.push_screen(AddressDialog(), answer)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): every key of the screen that its user can use now,
        by name (the same table as the footer and the help, :mod:`p2pspaces.app.tui.keys`)."""
        keys = (
            LOBBY
            if isinstance(screen, LobbyScreen)
            else ROOM
            if isinstance(screen, RoomScreen)
            else ()
        )
        for key in keys:
            target: Any = self if key.action.startswith("app.") else screen
            name = key.action.removeprefix("app.")
            if not target.check_action(key.name, ()):
                continue
            yield SystemCommand(
                key.named,
                f"{key.does[:1].upper()}{key.does[1:]} (key: {key.shown})",
                functools.partial(self.run_action, name, target),
            )
        if not keys:
            yield SystemCommand("Help", "Every key, in one place (key: F1)", self.action_help)
            yield SystemCommand(
                "Quit", "Leave cleanly and quit (key: Ctrl+Q)", self.action_quit_app
            )

    # --- the node's events ---------------------------------------------------------------

    async def _pump_events(self) -> None:
        while True:
            event = await self.node.events.get()
            try:
                self._show(event)
            except Exception:  # a drawing bug must not stop the event stream
                log.exception("could not show %s", event.NAME)

    def _show(self, event: Event) -> None:
        lines = self.narrator.tell(event)
        if isinstance(event, Ready):
            self.lobby.set_me(event.name, event.node)
        elif isinstance(event, RoomFound | RoomLost):
            self.lobby.show_rooms(self.node.room_list())
        elif isinstance(event, Joined):
            self._enter_room()
        elif isinstance(event, Ended | Left):
            self._back_to_lobby()
        elif self.room is not None:
            self._to_room(self.room, event)
        if isinstance(event, RoomFound | RoomLost):
            return  # the lobby's list (with its badges) shows rooms; no need to say it too
        for line in lines:
            self.told.append(line)
            if self.room is not None:
                self.room.say(line)
            in_lobby = self.room is None
            if line.tone in NOTIFY or in_lobby:
                severity = NOTIFY.get(line.tone, "information")
                self.notify(line.text, severity=severity, markup=False, timeout=6)  # type: ignore[arg-type]

    @staticmethod
    def _to_room(room: RoomScreen, event: Event) -> None:
        """The room screen's live parts: the roster, speaking dots, reactions, the bar."""
        if isinstance(event, StateChanged):
            room.show_state(event.state, event.actor)
        elif isinstance(event, Speaking | Quiet):
            room.show_speaking(event.member, isinstance(event, Speaking))
        elif isinstance(event, HeardBy):
            room.show_heard(event)
        elif isinstance(event, ReactionReceived):
            room.show_reaction(event.author, event.emoji)
        elif isinstance(event, WebReady):
            room.redraw()  # the room bar shows the phones' address

    def _enter_room(self) -> None:
        if self.room is not None:
            return
        self.room = RoomScreen(self.node.node_id)
        self.push_screen(self.room)
        replica = self.node.replica
        if replica is not None:
            self.room.show_state(replica.state)

    def _back_to_lobby(self) -> None:
        if self.room is None:
            return
        self.room = None
        while len(self.screen_stack) > 1 and self.screen is not self.lobby:
            self.pop_screen()
        self.lobby.show_rooms(self.node.room_list())


async def run(
    node: Node,
    *,
    host_title: str | None,
    join_ref: str | None,
    max_speakers: int,
    notices: tuple[str, ...] = (),
) -> int:
    """Run the app until the user quits; the node is stopped on the way out."""
    app = SpacesApp(
        node,
        host_title=host_title,
        join_ref=join_ref,
        max_speakers=max_speakers,
        notices=notices,
    )
    try:
        await app.run_async()
    finally:
        await node.stop()
    return app.return_code or 0
