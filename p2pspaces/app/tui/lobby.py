"""The lobby: who you are, and the Spaces live on this network."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from p2pspaces.app.tui.base import spaces
from p2pspaces.app.tui.keys import LOBBY, bindings
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


COLUMNS = (("Title", "title"), ("Host", "host"), ("Fingerprint", "fingerprint"),
           ("Stage", "stage"), ("Listening", "listening"), ("", "badges"))  # fmt: skip
HOST_MAX = 16
"""The most cells a host's name takes in the list (longer names are cut)."""
TITLE_MIN = 16


def _fit(columns: Iterable[list[int]], width: int | None = None) -> list[int]:
    """Column widths (cells) for the rows' contents: the host's name is capped, the title takes
    what is left of ``width`` (the terminal's, less padding), never less than TITLE_MIN."""
    widest = [
        max([len(label), *cells]) for (label, _), cells in zip(COLUMNS, columns, strict=False)
    ]
    if not widest:
        return []
    widest[1] = min(widest[1], HOST_MAX)
    total = width if width is not None else 80
    padding = 2 * len(widest) + 2
    room = total - padding - sum(widest[1:])
    widest[0] = max(TITLE_MIN, min(widest[0], room))
    spare = total - padding - sum(widest[:-1])
    widest[-1] = max(0, min(widest[-1], spare))
    return widest


def _cut(cell: Text, width: int) -> Text:
    """``cell`` cut to ``width`` cells with an ellipsis, if it is wider."""
    if cell.cell_len <= width:
        return cell
    cut = cell.copy()
    cut.truncate(width, overflow="ellipsis")
    return cut


class RoomsTable(DataTable[Text]):
    """The list of Spaces: its Enter (which selects the row, and so joins) shows as Join."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Join", key_display="Enter")
    ]


class LobbyScreen(Screen[None]):
    """The Spaces on the network; Enter joins, H hosts, A joins by address."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings(LOBBY))

    _rooms: tuple[RoomFound, ...] = ()
    _listed = 0
    """How many Spaces the list shows."""
    _me = b""
    """This node's key (set by :meth:`set_me`): a room whose host it is shows as ours."""

    def compose(self) -> ComposeResult:
        yield Static("p2pspaces", id="whoami")
        yield Static("Spaces on this network  (↑↓ choose, Enter joins)", classes="heading")
        table = RoomsTable(id="rooms", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(EMPTY, id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.show_rooms(())

    def on_resize(self) -> None:
        self.show_rooms(self._rooms)

    def set_me(self, name: str, node: bytes) -> None:
        """Show who this node is."""
        self._me = node
        line = Text("p2pspaces  ", style="bold")
        line.append(f"You: {printable(name)} ({short_fingerprint(node)})")
        self.query_one("#whoami", Static).update(line)

    def show_rooms(self, rooms: tuple[RoomFound, ...]) -> None:
        """Redraw the list, keeping the selected room selected.  Columns fit the screen as it
        is now: a long title is cut with an ellipsis (never the host or the counts)."""
        table = self.query_one("#rooms", DataTable)
        selected = self.selected()
        self._rooms = rooms
        table.clear(columns=True)  # columns sized afresh: a title gone no longer widens them
        cells = [self._cells(room) for room in rooms]
        columns = ([c.cell_len for c in column] for column in zip(*cells, strict=False))
        widths = _fit(columns, self.app.size.width)
        for (label, key), width in zip(
            COLUMNS, widths or [len(c[0]) for c in COLUMNS], strict=True
        ):
            table.add_column(label, key=key, width=max(width, len(label)))
        for room, row in zip(rooms, cells, strict=True):
            table.add_row(
                *(_cut(cell, w) for cell, w in zip(row, widths, strict=True)), key=room.room.hex()
            )
        if selected is not None and selected in {r.room.hex() for r in rooms}:
            table.move_cursor(row=table.get_row_index(selected))
        self._listed = len(rooms)
        self.query_one("#empty", Static).display = not rooms
        table.display = bool(rooms)
        if rooms and self.app.focused is None:
            table.focus()
        self.refresh_bindings()

    def _cells(self, room: RoomFound) -> tuple[Text, ...]:
        return (
            Text(printable(room.title), style="bold"),
            Text(printable(room.host_name)),
            Text(short_fingerprint(room.host), style="dim"),
            Text(str(room.speakers), justify="right"),
            Text(str(room.listeners), justify="right"),
            badges(room, self._me),
        )

    def selected(self) -> str | None:
        """The room id (hex) under the cursor."""
        table = self.query_one("#rooms", DataTable)
        if table.row_count == 0:
            return None
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(row.value) if row.value is not None else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Join shows only when there is a Space to join."""
        return action != "join" or self._listed > 0

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
