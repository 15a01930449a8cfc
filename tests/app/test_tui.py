"""The terminal app, driven by Textual's pilot: three apps on real nodes in one process."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label

from p2pspaces.app.tui.app import SpacesApp
from p2pspaces.app.tui.dialogs import ChooseRoom, Confirm, HostDialog, Invitation, PhonesDialog
from p2pspaces.app.tui.lobby import LobbyScreen, badges
from p2pspaces.app.tui.room import RoomScreen
from p2pspaces.core.events import RoomFound
from p2pspaces.core.identity import Identity, short_fingerprint
from p2pspaces.core.settings import Switch
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.web.service import WebService, web_of
from p2pspaces.web.settings import WebSettings

pytestmark = pytest.mark.timeout(180)


async def until(pilot: Pilot[Any], done: Callable[[], bool], within: float = 20.0) -> None:
    """Let the app run until ``done()`` holds, for as long as things keep happening: the wait
    fails only after ``within`` s in which the app was told nothing new and its screen stayed
    (a busy machine makes each step slower, not the test red; the test's own timeout is the
    bound on the whole)."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    last, idle_since = None, loop.time()
    while not done():
        told_ = getattr(app, "told", ())
        progress = (len(told_), told_[-1] if told_ else None, app.screen)
        if progress != last:
            last, idle_since = progress, loop.time()
        elif loop.time() - idle_since > within:
            last_told = [line.text for line in list(told_)[-5:]]
            raise TimeoutError(f"nothing new for {within} s and still not done; told {last_told}")
        await pilot.pause(0.05)


def told(app: SpacesApp, text: str) -> bool:
    return any(text in line.text for line in app.told)


def rows(app: SpacesApp, table: str) -> set[bytes]:
    room = app.room
    if room is None or not room.is_mounted:
        return set()
    found = room.query_one(f"#{table}", DataTable)
    return {bytes.fromhex(str(key.value)) for key in found.rows} if found.display else set()


class Person:
    def __init__(self, app: SpacesApp, pilot: Pilot[Any]) -> None:
        self.app, self.pilot, self.node = app, pilot, app.node

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)

    async def wait(self, done: Callable[[], bool], within: float = 15.0) -> None:
        await until(self.pilot, done, within)

    async def select(self, other: Person) -> None:
        assert self.app.room is not None
        assert self.app.room.select(other.node.node_id)
        await self.pilot.pause(0.05)


@asynccontextmanager
async def apps(*names: str) -> AsyncIterator[list[Person]]:
    """One app per name, each on its own real node (run_test contexts must nest in one task,
    so this is a context manager in the test, not a fixture)."""
    async with AsyncExitStack() as stack:
        made = []
        for name in names:
            node = Node(Identity.generate(), NodeConfig(name, interface="127.0.0.1"))
            stack.push_async_callback(node.stop)
            app = SpacesApp(node)
            pilot = await stack.enter_async_context(app.run_test(size=(100, 30)))
            await until(pilot, lambda n=node: n.port != 0)
            made.append(Person(app, pilot))
        yield made


async def test_a_whole_space_in_three_apps() -> None:
    async with apps("Hana", "Ann", "Bob") as (hana, ann, bob):
        await _whole_space(hana, ann, bob)


async def _whole_space(hana: Person, ann: Person, bob: Person) -> None:
    title = f"Pilot {secrets.token_hex(2)}"

    # Hana hosts from the lobby.
    await hana.press("h", *title, "enter")
    await hana.wait(lambda: isinstance(hana.app.screen, RoomScreen))
    room_id = hana.node.replica.room_id.hex()  # type: ignore[union-attr]

    # Ann's lobby lists it; Enter joins; the stage shows Hana.
    lobby = ann.app.lobby
    await ann.wait(lambda: room_id in {str(k.value) for k in lobby.query_one(DataTable).rows})
    lobby.query_one(DataTable).move_cursor(row=lobby.query_one(DataTable).get_row_index(room_id))
    await ann.press("enter")
    await ann.wait(lambda: hana.node.node_id in rows(ann.app, "stage"))
    toasts = [str(toast.message) for toast in ann.app._notifications]
    assert f"Joining {title}…" in toasts, toasts  # the title, not the room's 64-hex id
    assert ann.node.node_id in rows(ann.app, "audience")

    # A raised hand appears in Hana's queue; accepting it puts Ann on stage in both apps.
    await ann.press("h")
    await hana.wait(lambda: ann.node.node_id in rows(hana.app, "hands"))
    assert told(hana.app, "Ann raised a hand")
    await hana.select(ann)
    await hana.press("a")
    for person in (hana, ann):
        await person.wait(lambda p=person: ann.node.node_id in rows(p.app, "stage"))
    assert told(ann.app, "Hana brought you on stage")

    # Bob joins by the room's id; Hana invites him; he sees the invitation and accepts.
    bob.app.join_room(room_id)
    await hana.wait(lambda: bob.node.node_id in rows(hana.app, "audience"))
    await hana.select(bob)
    await hana.press("i")
    await bob.wait(lambda: isinstance(bob.app.screen, Invitation))
    assert told(bob.app, "Hana invites you to speak")
    await bob.press("y")
    for person in (hana, ann, bob):
        await person.wait(lambda p=person: bob.node.node_id in rows(p.app, "stage"))

    # Chat typed in one app appears in the others.
    await ann.press("c", *"hello from Ann", "enter")
    await hana.wait(lambda: told(hana.app, "Ann: hello from Ann"))
    await bob.wait(lambda: told(bob.app, "Ann: hello from Ann"))

    # Mute, remove and block each tell everyone who did what.
    await hana.press("escape")
    await hana.select(ann)
    await hana.press("x")
    await ann.wait(lambda: told(ann.app, "Hana muted you"))
    await bob.wait(lambda: told(bob.app, "Hana muted Ann"))

    await hana.select(bob)
    await hana.press("r")
    await hana.wait(lambda: isinstance(hana.app.screen, Confirm))
    await hana.press("y")
    await ann.wait(lambda: told(ann.app, "Hana removed Bob"))
    await bob.wait(lambda: isinstance(bob.app.screen, LobbyScreen))
    assert told(bob.app, "You are out of the Space: removed from the room")

    bob.app.join_room(room_id)
    await hana.wait(lambda: bob.node.node_id in rows(hana.app, "audience"))
    await hana.select(bob)
    await hana.press("b")
    await hana.wait(lambda: isinstance(hana.app.screen, Confirm))
    await hana.press("y")
    # (a member that fell out of step meanwhile catches up by a snapshot: told without who did it)
    await ann.wait(lambda: told(ann.app, "Hana blocked Bob") or told(ann.app, "Bob was blocked"))
    await bob.wait(lambda: told(bob.app, "blocked from the room"))

    # Ending the Space returns everyone to the lobby with a notice.
    await hana.press("e")
    await hana.wait(lambda: isinstance(hana.app.screen, Confirm))
    await hana.press("y")
    for person, words in ((hana, "You ended the Space"), (ann, "Hana ended the Space.")):
        await person.wait(lambda p=person: isinstance(p.app.screen, LobbyScreen))
        assert told(person.app, words)


async def test_two_spaces_with_one_title_make_the_app_ask_which() -> None:
    title = f"Same {secrets.token_hex(2)}"
    async with apps("Ann") as (ann,):
        hosts = [
            Node(Identity.generate(), NodeConfig(name, interface="127.0.0.1"))
            for name in ("Hana", "Hugo")
        ]
        try:
            for host in hosts:
                await host.start()
            rooms = [await host.host(title) for host in hosts]
            for room in rooms:
                await ann.node.directory.wait_for(room.hex(), 15)
            ann.app.join_room(title)
            await ann.wait(lambda: isinstance(ann.app.screen, ChooseRoom))
            assert ann.node.replica is None  # nothing joined at random
            await ann.press("down", "enter")  # the second choice
            await ann.wait(lambda: isinstance(ann.app.screen, RoomScreen))
            assert ann.node.replica is not None
            assert ann.node.replica.room_id == sorted(rooms)[1]
        finally:
            for host in hosts:
                await host.stop()


async def test_text_too_long_is_refused_whole_and_kept_to_shorten() -> None:
    """A pasted title or chat line over the limit is never cut unseen: the app says the limit
    and keeps the text where it was."""
    async with apps("Hana") as (hana,):
        await hana.press("h")
        await hana.wait(lambda: isinstance(hana.app.screen, HostDialog))
        title_box = hana.app.screen.query_one("#title", Input)
        title_box.value = "T" * 150  # pasted
        await hana.press("enter")
        problem = hana.app.screen.query_one("#problem", Label)
        assert "The title is 150 characters long; the most is 100." in str(problem.render())
        title_box.value = "Short enough"
        await hana.press("enter")
        await hana.wait(lambda: isinstance(hana.app.screen, RoomScreen))

        await hana.press("c")
        say = hana.app.screen.query_one("#say", Input)
        say.value = "x" * 594
        await hana.press("enter")
        toasts = [str(toast.message) for toast in hana.app._notifications]
        assert any("That line is 594 characters long; the most is 500." in t for t in toasts)
        assert say.value == "x" * 594  # kept, to shorten
        assert not told(hana.app, "Hana: x")  # nothing was sent


def test_the_lobby_marks_a_room_this_node_hosts_as_its_own() -> None:
    mine, cody = b"m" * 32, b"c" * 32
    kept = RoomFound(b"r" * 32, "Kept warm", cody, "Cody", 1, 2, owner=mine)
    assert "yours: Enter takes it back" in badges(kept, mine).plain
    assert "yours" not in badges(kept, cody).plain


def toasts(app: SpacesApp) -> list[str]:
    return [str(toast.message) for toast in app._notifications]


async def test_keys_say_why_they_do_nothing_and_arrows_go_on_from_list_to_list() -> None:
    async with apps("Hana", "Ann") as (hana, ann):
        await hana.press("h", *f"Keys {secrets.token_hex(2)}", "enter")
        await hana.wait(lambda: isinstance(hana.app.screen, RoomScreen))
        await hana.press("h")  # a listener's key, pressed by the host
        await hana.wait(lambda: "Hand: You are on stage already." in toasts(hana.app))

        ann.app.join_room(hana.node.replica.room_id.hex())  # type: ignore[union-attr]
        await hana.wait(lambda: ann.node.node_id in rows(hana.app, "audience"))
        await ann.wait(lambda: isinstance(ann.app.screen, RoomScreen))
        await ann.press("escape", "i")  # a host's key, pressed by a listener
        await ann.wait(lambda: "Invite: Only the host and co-hosts can do that." in toasts(ann.app))

        # ↓ at the end of the stage goes on to the audience (past the empty hands list), and
        # Tab skips the empty list too.
        room = hana.app.room
        assert room is not None
        room.query_one("#stage", DataTable).focus()
        await hana.press("down")
        assert room.focused is not None and room.focused.id == "audience"
        assert room.selected == ann.node.node_id
        await hana.press("up")
        assert room.focused is not None and room.focused.id == "stage"
        await hana.press("tab")
        assert room.focused is not None and room.focused.id == "audience"

        # A pasted paragraph is sent whole, its lines kept.
        await ann.press("c")
        say = ann.app.screen.query_one("#say", Input)
        say.post_message(events.Paste("first line\nsecond line"))
        await ann.pilot.pause(0.1)
        assert say.value == "first line↵second line"
        await ann.press("enter")
        await hana.wait(lambda: told(hana.app, "Ann: first line\n  second line"))


async def test_at_80x24_long_titles_and_names_are_cut_never_the_host_roles_or_address(
    tmp_path: Path,
) -> None:
    """The smallest usual terminal: what a person needs stays on screen; and a listener's W
    shows the page of the node that serves phones."""
    title = "A very long title for the Friday evening lightning talks at the hall " + "x" * 20
    long_name = "Hana with a rather long name ok"
    node = Node(Identity.generate(), NodeConfig(long_name, interface="127.0.0.1"))
    node.services.append(WebService(node, tmp_path, WebSettings(Switch.AUTO, 0, 0)))
    ann_node = Node(Identity.generate(), NodeConfig("Ann", interface="127.0.0.1"))
    try:
        await node.start()
        room_id = await node.host(title)
        app = SpacesApp(ann_node)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(
                pilot,
                lambda: (
                    room_id.hex() in {str(k.value) for k in app.lobby.query_one(DataTable).rows}
                ),
                30,
            )
            lobby = app.lobby.query_one(DataTable)
            row = lobby.get_row(room_id.hex())
            widths = [column.get_render_width(lobby) for column in lobby.columns.values()]
            assert sum(widths) <= 80, widths  # every column on screen, the title cut to fit
            assert str(row[0]).endswith("…") and "Hana with a rat" in str(row[1])
            assert "enter" in app.screen.active_bindings  # the footer offers Join

            lobby.move_cursor(row=lobby.get_row_index(room_id.hex()))
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RoomScreen) and hana_row(app), 30)
            room = app.room
            assert room is not None
            bar = str(room.query_one("#roombar").render())
            assert "hosted by" in bar and "…" in bar
            _dot, name, flags = hana_row(app)
            assert "host" in str(flags) and str(name).endswith(short_fingerprint(node.node_id)[:4])
            assert "…" in str(name)

            web = web_of(node)
            await until(pilot, lambda: ann_node.guests.phones_page() is not None, 30)
            assert web is not None and web.info is not None
            await pilot.press("w")  # Hana's page, in a dialog that fits, its Close visible
            await until(pilot, lambda: isinstance(app.screen, PhonesDialog))
            await pilot.pause(0.2)
            shown = " ".join(str(label.render()) for label in app.screen.query(Label))
            assert web.info.http in shown and "Served by Hana with a" in shown, shown
            close = app.screen.query_one("#close")
            assert close.region.bottom <= 24 and close.region.y >= 0, close.region
    finally:
        await ann_node.stop()
        await node.stop()


def hana_row(app: SpacesApp) -> list[Any]:
    room = app.room
    if room is None or not room.is_mounted:
        return []
    stage = room.query_one("#stage", DataTable)
    return list(stage.get_row_at(0)) if stage.row_count else []
