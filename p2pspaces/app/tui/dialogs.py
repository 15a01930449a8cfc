"""The app's small windows: host a Space, join by address, choose between rooms, confirm,
answer an invitation, and the help screen."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, OptionList
from textual.widgets.option_list import Option

from p2pspaces.app.qr import qr_lines
from p2pspaces.app.tui.keys import help_text
from p2pspaces.app.words import printable
from p2pspaces.core.events import RoomFound
from p2pspaces.core.identity import grouped_hex, short_fingerprint
from p2pspaces.core.wire import TITLE_MAX, too_long
from p2pspaces.node.dialer import parse_address


class Confirm(ModalScreen[bool]):
    """A yes/no question; Escape is no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "no", "Cancel"),
        Binding("y", "yes", "Yes", show=False),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "Cancel") -> None:
        super().__init__()
        self._question, self._yes, self._no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button(self._yes, variant="error", id="yes")
                yield Button(self._no, id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        """Yes."""
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        """No."""
        self.dismiss(False)


class Invitation(ModalScreen[bool]):
    """Someone invites you to speak: accept (Y) or decline (N)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "accept", "Accept"),
        Binding("n,escape", "decline", "Decline"),
    ]

    def __init__(self, who: str) -> None:
        super().__init__()
        self._who = who

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"{self._who} invites you to speak."), classes="question")
            yield Label("Check your microphone level at the bottom of the room first.")
            with Horizontal(classes="buttons"):
                yield Button("Accept (Y)", variant="success", id="accept")
                yield Button("Decline (N)", id="decline")

    def on_mount(self) -> None:
        self.query_one("#accept", Button).focus()

    @on(Button.Pressed, "#accept")
    def action_accept(self) -> None:
        """Go on stage."""
        self.dismiss(True)

    @on(Button.Pressed, "#decline")
    def action_decline(self) -> None:
        """Stay in the audience."""
        self.dismiss(False)


class HostDialog(ModalScreen[tuple[str, int] | None]):
    """Host a Space: a title and how many speakers may join the stage."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Host a Space", classes="title")
            yield Label("Title")
            yield Input(placeholder="e.g. Friday demos", id="title")
            yield Label("Speakers allowed on stage besides hosts (0-100)")
            yield Input("10", type="integer", max_length=3, id="speakers")
            yield Label("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Host", variant="primary", id="host")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#host")
    def _host(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        speakers_text = self.query_one("#speakers", Input).value.strip() or "10"
        problem = self.query_one("#problem", Label)
        long = too_long("The title", title, TITLE_MAX)
        if not title or long:
            problem.update(long or "Give the Space a title.")
            self.query_one("#title", Input).focus()
            return
        speakers = int(speakers_text) if speakers_text.isdigit() else -1
        if not 0 <= speakers <= 100:
            problem.update("Speakers: a number from 0 to 100.")
            return
        self.dismiss((title, speakers))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without hosting."""
        self.dismiss(None)


class AddressDialog(ModalScreen[str | None]):
    """Join by the address on the host's screen (for networks where rooms do not show up)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Join by address", classes="title")
            yield Label(
                "If a Space does not appear in the list (some networks block discovery), "
                "type the address shown on the host's screen:"
            )
            yield Input(placeholder="e.g. 192.168.1.20:41234", id="address")
            yield Label("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Join", variant="primary", id="join")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#join")
    def _join(self) -> None:
        text = self.query_one("#address", Input).value.strip()
        if parse_address(text) is None:
            self.query_one("#problem", Label).update(
                "That is not an address: four numbers and a port, like 192.168.1.20:41234."
            )
            return
        self.dismiss(text)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without joining."""
        self.dismiss(None)


class ChooseRoom(ModalScreen[str | None]):
    """Two live Spaces share a title: say which (returns the room id)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, candidates: tuple[RoomFound, ...]) -> None:
        super().__init__()
        self._title = title
        self._candidates = candidates

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(
                Text(f"{len(self._candidates)} Spaces are called {printable(self._title)!r}."),
                classes="title",
            )
            yield Label("Which one? Compare the host's fingerprint with theirs.")
            yield OptionList(
                *(
                    Option(
                        Text(
                            f"{printable(room.host_name)} ({short_fingerprint(room.host)})"
                            f"  room {room.room.hex()[:8]}"
                            + ("  met before" if room.host_trust == "known" else "")
                        ),
                        id=room.room.hex(),
                    )
                    for room in self._candidates
                ),
                id="choices",
            )

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Join neither."""
        self.dismiss(None)


class HelpScreen(ModalScreen[None]):
    """Every key, in one place (F1)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,f1,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="help"):
            yield Markdown(help_text())
            yield Button("Close (Esc)", id="close")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to where you were."""
        self.dismiss(None)


class PhonesDialog(ModalScreen[None]):
    """How phones join from their browser: the page's QR code, its addresses and the secure
    page's certificate fingerprint (W)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,w,q", "close", "Close")]

    def __init__(
        self,
        http: str,
        https: str,
        cert_sha256: str,
        *,
        guests: int | None = None,
        served_by: str | None = None,
    ) -> None:
        """``guests``: browsers this node serves now; ``served_by``: the name of the node that
        serves the page, when it is not this one."""
        super().__init__()
        self._http, self._https, self._cert = http, https, cert_sha256
        self._guests, self._served_by = guests, served_by

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog phones"):
            yield Label(Text("Phones join from their browser", style="bold"), classes="title")
            yield Label(Text("\n".join(qr_lines(self._http)), style="white on black"), id="qr")
            yield Label(Text(f"Scan, or open {self._http}"))
            yield Label(
                Text(
                    f"To speak, phones use {self._https}. The browser warns that the "
                    "certificate is not from an authority: this node made it. Its SHA-256:"
                )
            )
            shown = grouped_hex(self._cert)
            half = len(shown) // 2 + 1
            yield Label(Text(f"{shown[:half]}\n{shown[half:]}", style="cyan"))
            if self._served_by is not None:
                yield Label(Text(f"Served by {self._served_by}'s node."))
            if self._guests is not None:
                yield Label(Text(f"Browser guests served by this node now: {self._guests}"))
            yield Button("Close (Esc)", id="close")

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Back to the room."""
        self.dismiss(None)


class TitleDialog(ModalScreen[str | None]):
    """Rename the Space."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("New title", classes="title")
            yield Input(self._current, id="title")
            yield Label("", id="problem", classes="problem")

    @on(Input.Submitted)
    def _done(self, event: Input.Submitted) -> None:
        title = event.value.strip()
        problem = too_long("The title", title, TITLE_MAX)
        if problem is not None:
            self.query_one("#problem", Label).update(problem)
            return
        self.dismiss(title or None)

    def action_cancel(self) -> None:
        """Keep the title."""
        self.dismiss(None)
