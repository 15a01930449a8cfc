"""One table of keys: the footer, the help screen and the palette agree, and each person is
offered the keys they can use."""

from __future__ import annotations

from p2pspaces.app.tui.app import SpacesApp
from p2pspaces.app.tui.keys import LOBBY, REACTIONS, ROOM, help_text
from p2pspaces.app.tui.lobby import LobbyScreen
from p2pspaces.app.tui.room import RoomScreen
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from tests.core.kit import Space


def _space() -> Space:
    """Hana hosts; Ann listens; Bob is invited to speak; Cora is a co-host."""
    space = Space.create()
    space.join("ann", 2)
    space.join("bob", 3)
    space.join("cora", 4, role="cohost")
    space.do("host", ActionKind.INVITE_SPEAKER, "bob")
    return space


def _palette(app: SpacesApp, space: Space, who: str) -> set[str]:
    screen = RoomScreen(space.key(who))
    screen.state = space.state
    return {command.title for command in app.get_system_commands(screen)}


def test_every_key_is_in_the_help_and_in_the_palette_of_someone_who_can_use_it() -> None:
    app = SpacesApp(
        Node(Identity.generate(), NodeConfig("Me", interface="127.0.0.1")), start_node=False
    )
    space = _space()
    palettes = {who: _palette(app, space, who) for who in ("host", "ann", "bob", "cora")}
    help_ = help_text()
    bound = {binding.action for binding in RoomScreen.BINDINGS + LobbyScreen.BINDINGS}  # type: ignore[union-attr]
    assert bound == {key.action for key in (*ROOM, *LOBBY)}
    for key in ROOM:
        assert key in REACTIONS[1:] or f"**{key.shown}**" in help_, key
        assert any(key.named in palette for palette in palettes.values()), key
    for key in LOBBY:
        assert f"**{key.shown}**" in help_, key
    assert "👋" in help_ and "React 👋 wave" in palettes["ann"]  # each reaction, by name too
    assert {"Louder (volume up)", "Quieter (volume down)"} <= palettes["ann"]

    # Nobody is offered keys that do nothing for them.
    assert not {"Hand", "Accept invite", "Decline invite"} & palettes["host"]
    assert {"Invite", "Remove", "Block", "End", "Mute me"} <= palettes["host"]
    assert not {"Invite", "Remove", "Block", "End", "Mute me", "Accept invite"} & palettes["ann"]
    assert "Hand" in palettes["ann"]
    assert {"Accept invite", "Decline invite"} <= palettes["bob"]
    assert "Remove" in palettes["cora"] and "Hand" not in palettes["cora"]


def test_the_lobby_offers_join_only_with_a_space_to_join() -> None:
    lobby = LobbyScreen()
    assert not lobby.check_action("join", ())
    lobby._listed = 1
    assert lobby.check_action("join", ())
    assert lobby.check_action("host", ())
