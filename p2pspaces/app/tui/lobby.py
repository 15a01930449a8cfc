"""The lobby: who you are, and the Spaces live on this network."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from p2pspaces.app.tui.base import spaces
from p2pspaces.app.words import printable
from p2pspaces.core.events import RoomFound
from p2pspaces.core.identity import short_fingerprint

EMPTY = (
    "No Spaces on this network yet; still looking.\n"
    "Press H to host one, or A to join by the address on a host's screen "
    "(some networks hide Spaces)."
)


def badges(room: RoomFound, me: bytes = b"") -> Text:
    """Yours, REC, met before (✓) or a name clash (!)."""
    text = Text()
    if me and room.owner == me:
        text.append("yours: Enter takes it back ", style="bold cyan")
    if room.recording:
        text.append("REC ", style="bold white on red")
    if room.host_trust == "known":
        text.append("✓ met", style="green")
    elif room.host_trust == "clash":
        text.append("! not the one you met", style="bold yellow")
    return text


class LobbyScreen(Screen[None]):
    """The Spaces on the network; Enter joins, H hosts, A joins by address."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "join", "Join", show=True),
        Binding("h", "host", "Host a Space"),
        Binding("a", "address", "Join by address"),
        Binding("f1", "app.help", "Help"),
        Binding("ctrl+q", "app.quit_app", "Quit"),
    ]

    _me = b""
    """This node's key (set by :meth:`set_me`): a room whose host it is shows as ours."""

    def compose(self) -> ComposeResult:
        yield Static("p2pspaces", id="whoami")
        yield Static("Spaces on this network  (↑↓ choose, Enter joins)", classes="heading")
        table: DataTable[Text | str] = DataTable(id="rooms", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(EMPTY, id="empty")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#rooms", DataTable)
        table.add_column("Title", key="title")
        table.add_column("Host", key="host")
        table.add_column("Fingerprint", key="fingerprint")
        table.add_column("On stage", key="stage")
        table.add_column("Listening", key="listening")
        table.add_column("", key="badges")
        self.show_rooms(())

    def set_me(self, name: str, node: bytes) -> None:
        """Show who this node is."""
        self._me = node
        line = Text("p2pspaces  ", style="bold")
        line.append(f"You: {printable(name)} ({short_fingerprint(node)})")
        self.query_one("#whoami", Static).update(line)

    def show_rooms(self, rooms: tuple[RoomFound, ...]) -> None:
        """Redraw the list, keeping the selected room selected."""
        table = self.query_one("#rooms", DataTable)
        selected = self.selected()
        table.clear()
        for room in rooms:
            table.add_row(
                Text(printable(room.title), style="bold"),
                Text(printable(room.host_name)),
                Text(short_fingerprint(room.host), style="dim"),
                str(room.speakers),
                str(room.listeners),
                badges(room, self._me),
                key=room.room.hex(),
            )
        if selected is not None and selected in {r.room.hex() for r in rooms}:
            table.move_cursor(row=table.get_row_index(selected))
        self.query_one("#empty", Static).display = not rooms
        table.display = bool(rooms)
        if rooms and self.app.focused is None:
            table.focus()

    def selected(self) -> str | None:
        """The room id (hex) under the cursor."""
        table = self.query_one("#rooms", DataTable)
        if table.row_count == 0:
            return None
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(row.value) if row.value is not None else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            spaces(self.app).join_room(str(event.row_key.value))

    def action_join(self) -> None:
        """Join the selected Space."""
        room = self.selected()
        if room is None:
            self.app.notify("No Space selected: there are none yet. H hosts one.")
            return
        spaces(self.app).join_room(room)

    def action_host(self) -> None:
        """Host a new Space."""
        spaces(self.app).ask_host()

    def action_address(self) -> None:
        """Join by address."""
        spaces(self.app).ask_address()
