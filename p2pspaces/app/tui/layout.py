"""The room screen's layout, as pure functions of what is shown and the room there is: the
room bar, people's rows and columns, the level meter (kept apart from the screen so that they
can be reasoned about, and tested, without a terminal)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from p2pspaces.app.words import printable
from p2pspaces.core.events import HeardBy
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.room import Role, RoomState


def meter(level_db: float, width: int = 16) -> Text:
    """A level bar from -60 dBFS (empty) to 0 dBFS (full)."""
    filled = max(0, min(width, round((level_db + 60) / 60 * width)))
    bar = Text("█" * filled, style="green" if level_db < -6 else "bold red")
    bar.append("░" * (width - filled), style="dim")
    return bar


PEOPLE_CHROME = 1 + 2 + 3 * 2
"""Cells of a people list that are not names or flags: the border, the dot, cell padding."""
NAME_MIN = 6


def fit_row(name: Text, flags: Text, width: int) -> tuple[Text, Text]:
    """A person's name and flags within ``width`` cells: the name is cut first (its short
    fingerprint and marks are kept), so that a role is never cut to "hos"."""
    if width <= 0 or name.cell_len + 1 + flags.cell_len <= width:
        return name, flags
    marks = [span for span in name.spans if span.style == "mark"]
    tail = name[marks[0].start :] if marks else Text()
    head = name[: marks[0].start] if marks else name
    room = max(NAME_MIN, width - 1 - flags.cell_len - tail.cell_len)
    head.truncate(room, overflow="ellipsis")
    cut = head + tail
    if cut.cell_len + 1 + flags.cell_len > width:
        flags = flags.copy()
        flags.truncate(max(0, width - 1 - cut.cell_len), overflow="ellipsis")
    return cut, flags


def columns(table: DataTable[Text | str], name: int = 4, flags: int = 5) -> None:
    """The people list's columns, ``name`` and ``flags`` cells wide (given, not measured by
    the table later: a table measures after it first draws, and drew names cut meanwhile)."""
    table.add_column("", key="dot", width=2)
    table.add_column("name", key="name", width=name)
    table.add_column("flags", key="flags", width=flags)


TITLE_MIN = 12
"""The fewest cells of the title the room bar keeps before it cuts anything else."""
BAR_NAME_MAX = 16
"""The most cells of the host's name in the room bar (the join address must fit)."""


def fit_bar(title: str, rest: Text, width: int) -> Text:
    """The room bar: the title cut (with an ellipsis) so that what follows it fits ``width``;
    on a very narrow screen, what follows is cut instead."""
    room = max(TITLE_MIN, width - rest.cell_len)
    bar = Text(title, style="bold")
    if bar.cell_len > room:
        bar.truncate(room, overflow="ellipsis")
    bar.append_text(rest)
    if width > 0 and bar.cell_len > width:
        bar.truncate(width, overflow="ellipsis")
    return bar


def bar_details(
    state: RoomState,
    me: NodeId,
    signed_host_name: str,
    *,
    heard: HeardBy | None,
    address: str | None,
    phones: str | None,
) -> Text:
    """What the room bar says after the title: recording, the host, an acting host, who hears
    us (on stage), the join address and the phones' page."""
    rest = Text()
    if state.recording:
        rest.append("  REC ", style="bold white on red")
    host = state.members.get(state.host)
    host_name = Text(printable(host.name if host is not None else signed_host_name))
    host_name.truncate(BAR_NAME_MAX, overflow="ellipsis")
    rest.append(f"  hosted by {host_name.plain}", style="dim")
    if state.authority != state.host:
        acting = state.members.get(state.authority)
        name = printable(acting.name) if acting else short_fingerprint(state.authority)
        rest.append(f"  acting host: {name}", style="yellow")
    mine = state.members.get(me)
    if heard is not None and heard.of and mine is not None and mine.role is not Role.LISTENER:
        style = "green" if heard.heard == heard.of else "bold yellow"
        rest.append(f"  heard by {heard.heard} of {heard.of}", style=style)
    if address is not None:
        rest.append(f"  join address: {address}", style="cyan")
    if phones is not None:
        rest.append(f"  phones: {phones} (W)", style="green")
    return rest
