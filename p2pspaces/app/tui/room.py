"""The room: the stage, raised hands, the audience, chat and activity, your microphone.

Everything shown comes from the node's events (the signed state, speaking levels, chat); every
key is a node command.  No room rule lives here: a host action on someone who may not be acted
on is refused by the room, and the refusal is shown in words.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Span, Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from p2pspaces.app.tui.base import spaces
from p2pspaces.app.tui.chatline import ChatLine, sent
from p2pspaces.app.tui.dialogs import Confirm, Invitation, PhonesDialog, TitleDialog
from p2pspaces.app.tui.keys import EMOJI, ROOM, Key, Who, bindings
from p2pspaces.app.tui.layout import (
    PEOPLE_CHROME,
    bar_details,
    columns,
    fit_bar,
    fit_row,
    meter,
)
from p2pspaces.app.words import Line, Tone, called, glyph, printable, role_word
from p2pspaces.audio.processing import processor_of
from p2pspaces.core.events import HeardBy
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.room import Role, RoomState
from p2pspaces.core.wire import CHAT_MAX, Action, ActionKind, too_long
from p2pspaces.web.service import web_of

REACTION_S = 4.0
"""How long a reaction stays next to its sender's name."""
BY_ACTION = {key.name: key for key in ROOM}
BY_KEY = {name: key for key in ROOM for name in key.keys.split(",")}
LISTS = ("stage", "hands", "audience")
TONE_STYLE = {
    Tone.INFO: "",
    Tone.CHAT: "",
    Tone.ASK: "bold cyan",
    Tone.WARN: "yellow",
    Tone.ERROR: "bold red",
}


class RoomScreen(Screen[None]):
    """One Space, as this node holds it."""

    BINDINGS: ClassVar[list[BindingType]] = list(bindings(ROOM))

    def __init__(self, me: bytes) -> None:
        super().__init__()
        self.me = NodeId(me)
        self.state: RoomState | None = None
        self.heard: HeardBy | None = None
        """Who hears us, while we speak (the room bar shows it)."""
        self.speaking: set[bytes] = set()
        self.reactions: dict[bytes, tuple[str, float]] = {}
        self.selected: NodeId | None = None
        self._invited = False
        self._mebar = Text()
        self._live = False
        """Whether the widgets exist (set first thing in on_mount)."""
        self._early: list[Line] = []
        """Lines told before the screen was mounted."""

    # --- layout --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="roombar")
        with Horizontal(id="body"):
            with Vertical(id="people"):
                yield Static("On stage", classes="heading", id="stage-heading")
                yield self._table("stage")
                yield Static("Raised hands", classes="heading", id="hands-heading")
                yield self._table("hands")
                yield Static("Audience", classes="heading", id="audience-heading")
                yield self._table("audience")
            with Vertical(id="talk"):
                yield RichLog(id="log", wrap=True, markup=False, max_lines=2000, min_width=10)
                yield ChatLine(
                    placeholder="Chat: type, Enter sends (Shift+Enter: new line; Esc: keys)",
                    id="say",
                )
        yield Static("", id="mebar")
        yield Footer()

    @staticmethod
    def _table(name: str) -> DataTable[Text | str]:
        table: DataTable[Text | str] = DataTable(
            id=name, cursor_type="row", show_header=False, classes="people"
        )
        columns(table)
        return table

    def on_mount(self) -> None:
        self._live = True
        self.call_after_refresh(self._flush_early)
        self.call_after_refresh(self._draw)  # again, now that the lists' widths are known
        self._draw()
        self.refresh_bindings()
        self.set_interval(0.1, self._show_me)
        self.set_interval(1.0, self._expire_reactions)
        self.query_one("#stage", DataTable).focus()

    def _flush_early(self) -> None:
        for line in self._early:
            self.say(line)
        self._early.clear()

    # --- what the app feeds in -----------------------------------------------------------

    def show_state(self, state: RoomState, actor: bytes | None = None) -> None:
        """A new signed state (``actor`` made it): redraw everything that depends on it."""
        self.state = state
        me = state.members.get(self.me)
        invited = me is not None and me.invited
        if invited and not self._invited:
            self._invitation(NodeId(actor) if actor is not None else state.authority)
        self._invited = invited
        if self._live:
            self._draw()
            self.refresh_bindings()

    def show_heard(self, event: HeardBy) -> None:
        """Who hears us: in the room bar while we are on stage."""
        self.heard = event
        if self._live:
            self.redraw()

    def show_speaking(self, member: bytes, speaking: bool) -> None:
        """A live speaking indicator."""
        if speaking:
            self.speaking.add(member)
        else:
            self.speaking.discard(member)
        if self._live:
            self._draw_people()

    def show_reaction(self, member: bytes, emoji: str) -> None:
        """A reaction, shown next to its sender for a few seconds."""
        self.reactions[member] = (emoji, time.monotonic() + REACTION_S)
        if self._live:
            self._draw_people()

    def say(self, line: Line) -> None:
        """Add a sentence to the activity log."""
        if not self._live:
            self._early.append(line)
            return
        self.query_one("#log", RichLog).write(Text(line.text, style=TONE_STYLE[line.tone]))

    # --- drawing -------------------------------------------------------------------------

    def on_resize(self) -> None:
        self._draw()

    def redraw(self) -> None:
        """Draw the room bar and the people again (something outside the state changed)."""
        self._draw()

    def _draw(self) -> None:
        state = self.state
        if state is None:
            return
        node = spaces(self.app).node
        replica = node.replica
        signed_name = replica.host_name if replica is not None else short_fingerprint(state.host)
        web = web_of(node)
        rest = bar_details(
            state,
            self.me,
            signed_name,
            heard=self.heard,
            address=node.join_address(),
            phones=web.info.http if web is not None and web.info is not None else None,
        )
        self.query_one("#roombar", Static).update(
            fit_bar(printable(state.title), rest, self.size.width - 2)
        )
        self._draw_people()

    def _draw_people(self) -> None:
        state = self.state
        if state is None:
            return
        stage = [(n, m) for n, m in state.members.items() if m.role is not Role.LISTENER]
        stage.sort(key=lambda nm: (-nm[1].role, nm[1].name.casefold(), nm[0]))
        audience = [(n, m) for n, m in state.members.items() if m.role is Role.LISTENER]
        audience.sort(key=lambda nm: (nm[0] != self.me, nm[1].name.casefold(), nm[0]))
        hands = [n for n in state.hand_queue() if n in state.members]
        self._fill("stage", [n for n, _ in stage])
        moderating = self.me in state.authority_set()
        self._fill("hands", hands if moderating else [])
        for part in ("hands", "hands-heading"):
            self.query_one(f"#{part}").display = moderating
        self.query_one("#hands-heading", Static).update(f"Raised hands ({len(hands)})")
        self._fill("audience", [n for n, _ in audience])
        self.query_one("#audience-heading", Static).update(f"Audience ({len(audience)})")
        self.query_one("#stage-heading", Static).update(f"On stage ({len(stage)})")

    def _fill(self, name: str, nodes: list[NodeId]) -> None:
        table = self.query_one(f"#{name}", DataTable)
        keep = table.cursor_row
        table.clear(columns=True)  # widths from the rows of now, not the widest ever seen
        width = self.query_one("#people").size.width - PEOPLE_CHROME
        rows = [(node, self._row(node)) for node in nodes]
        fitted = [(node, dot, *fit_row(who, flags, width)) for node, (dot, who, flags) in rows]
        columns(
            table,
            max([4, *(who.cell_len for _, _, who, _ in fitted)]),
            max([5, *(flags.cell_len for _, _, _, flags in fitted)]),
        )
        for node, dot, who, flags in fitted:
            table.add_row(dot, who, flags, key=node.hex())
        table.can_focus = bool(nodes)  # Tab skips an empty list
        if nodes:
            table.move_cursor(row=min(keep, len(nodes) - 1), animate=False)

    def _row(self, node: NodeId) -> tuple[Text, Text, Text]:
        state = self.state
        if state is None:
            return Text(), Text(), Text()
        member = state.members[node]
        talking = node in self.speaking and not member.muted
        dot = Text("●", style="bold green") if talking else Text("○", style="dim")
        if member.role is Role.LISTENER:
            dot = Text("✋", style="yellow") if member.hand else Text(" ")
        name = Text(printable(member.name), style="bold" if node == self.me else "")
        mark = Text(" (you)" if node == self.me else "", style="dim")
        mark.append(f" {short_fingerprint(node)[:4]}", style="dim")
        mark.append_text(self._trust(node, member.name))
        name.append_text(mark)
        name.spans.append(Span(len(name) - len(mark), len(name), "mark"))  # kept when cut
        flags = Text()
        if member.role is not Role.LISTENER:
            flags.append(role_word(member.role) + " ", style="cyan")
        if node == state.authority and member.role is not Role.HOST:
            flags.append("acting host ", style="yellow")
        if member.muted:
            flags.append("muted ", style="red")
        if member.invited:
            flags.append("invited ", style="cyan")
        volume = spaces(self.app).node.voice.volume(node)
        if volume != 1.0:
            flags.append(f"vol {volume:.0%} ", style="magenta")
        reaction = self.reactions.get(node)
        if reaction is not None:
            flags.append(glyph(reaction[0]))
        return dot, name, flags

    def _trust(self, node: NodeId, name: str) -> Text:
        """✓ for someone met before this room, ! for a name met before under another key."""
        if node == self.me:
            return Text()
        people = spaces(self.app).node.people
        if people.met_before(node):
            return Text(" ✓", style="green")
        if people.others_named(node, name) and node not in people.people:
            return Text(" !", style="bold yellow")
        return Text()

    def _show_me(self) -> None:
        node = spaces(self.app).node
        state = self.state
        me = state.members.get(self.me) if state is not None else None
        line = Text("Mic ")
        line.append_text(meter(node.voice.mic_level_db))
        line.append(" ")
        if me is None:
            line.append("  joining…")
        elif me.role is Role.LISTENER:
            line.append("  You listen. ")
            line.append("H", style="bold")
            line.append(" lowers your hand" if me.hand else " asks to speak")
        else:
            line.append(f"  You are {role_word(me.role)}: ")
            if me.muted:
                line.append("MUTED", style="bold white on red")
                line.append(" (M unmutes)")
            else:
                line.append("LIVE", style="bold black on green")
                line.append(" (M mutes)")
        if line != self._mebar:  # redraw only what changed: an idle room costs little CPU
            self._mebar = line
            self.query_one("#mebar", Static).update(line)

    def _expire_reactions(self) -> None:
        now = time.monotonic()
        expired = [n for n, (_, until) in self.reactions.items() if until <= now]
        for node in expired:
            del self.reactions[node]
        if expired:
            self._draw_people()

    # --- selection -----------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None and event.data_table.has_focus:
            self.selected = NodeId(bytes.fromhex(str(event.row_key.value)))

    def on_descendant_focus(self) -> None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.row_count:
            key = focused.coordinate_to_cell_key(focused.cursor_coordinate).row_key.value
            if key is not None:
                self.selected = NodeId(bytes.fromhex(str(key)))

    def select(self, node: NodeId) -> bool:
        """Put the cursor on ``node`` in whichever list shows it (hands first)."""
        for name in ("hands", "stage", "audience"):
            table = self.query_one(f"#{name}", DataTable)
            if table.display and node.hex() in {str(k.value) for k in table.rows}:
                table.focus()
                table.move_cursor(row=table.get_row_index(node.hex()), animate=False)
                self.selected = node
                return True
        return False

    def _target(self) -> NodeId | None:
        state = self.state
        if self.selected is None or state is None or self.selected not in state.members:
            self.app.notify("Select someone first (Tab to the lists, arrows to move).")
            return None
        return self.selected

    def _person(self, node: NodeId) -> str:
        state = self.state
        member = state.members.get(node) if state is not None else None
        return called(member.name, node, state) if member is not None else short_fingerprint(node)

    # --- actions -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys show in the footer and the palette only for those who can use them."""
        key = BY_ACTION.get(action)
        return key is None or self.may(key.who)

    def may(self, who: Who) -> bool:
        """Whether this node, in its role now, may use keys meant for ``who``."""
        state = self.state
        me = state.members.get(self.me) if state is not None else None
        if who is Who.EVERYONE:
            return True
        if state is None or me is None:
            return False
        return {
            Who.LISTENERS: me.role is Role.LISTENER,
            Who.ON_STAGE: me.role is not Role.LISTENER,
            Who.INVITED: me.invited,
            Who.MODERATORS: self.me in state.authority_set(),
        }[who]

    def on_key(self, event: events.Key) -> None:
        """A key this person cannot use says why; ↑ ↓ go on from one list to the next."""
        key: Key | None = BY_KEY.get(event.key)
        if key is not None and not self.may(key.who):
            event.stop()
            self.app.notify(f"{key.label}: {key.who.value}", markup=False)
        elif event.key in ("up", "down") and self._next_list(event.key == "down"):
            event.stop()

    def _next_list(self, down: bool) -> bool:
        """From the end of a list to the next list that has people (or back)."""
        focused = self.focused
        if not isinstance(focused, DataTable) or focused.id not in LISTS:
            return False
        at_edge = focused.cursor_row == (focused.row_count - 1 if down else 0)
        if not at_edge:
            return False
        order = LISTS if down else LISTS[::-1]
        later = order[order.index(str(focused.id)) + 1 :]
        for name in later:
            table = self.query_one(f"#{name}", DataTable)
            if table.display and table.row_count:
                table.focus()
                table.move_cursor(row=0 if down else table.row_count - 1, animate=False)
                return True
        return False

    def action_scroll_log(self, direction: int) -> None:
        """Scroll the chat and activity a page, wherever the focus is."""
        log = self.query_one("#log", RichLog)
        if direction < 0:
            log.scroll_page_up(animate=False)
        else:
            log.scroll_page_down(animate=False)

    def _request(self, kind: ActionKind, target: NodeId | None = None, **kw: Any) -> None:
        app = spaces(self.app)
        app.do(app.node.request(Action(kind, target, **kw)))

    def action_phones(self) -> None:
        """Show how phones join from their browser (the QR code of the page): this node's page
        if it serves one, else the page of the node that advertises the room."""
        node = spaces(self.app).node
        web = web_of(node)
        if web is not None and web.info is not None:
            info = web.info
            dialog = PhonesDialog(info.http, info.https, info.cert_sha256, guests=web.serving)
            self.app.push_screen(dialog)
            return
        elsewhere = node.guests.phones_page()
        if elsewhere is None:
            self.notify(
                "No node of this Space says it serves phones yet (the host's and co-hosts' "
                "nodes do, unless started with --web off).",
                severity="warning",
            )
            return
        page, name = elsewhere
        self.app.push_screen(
            PhonesDialog(page.http, page.https, page.cert_sha256, served_by=printable(name))
        )

    def action_headphones(self) -> None:
        """Say you wear headphones (no echo cancellation), or that you no longer do."""
        processor = processor_of(spaces(self.app).node.audio.source)
        if processor is None:
            self.notify("Your input is not processed (a file, a tone, or --process off).")
            return
        wearing = not processor.settings.headphones
        processor.set_headphones(wearing)
        self.notify(
            "Headphones: echo cancellation off."
            if wearing
            else "No headphones: echo cancellation on (your speakers do not come back)."
        )

    def action_chat(self) -> None:
        """Type a chat line."""
        self.query_one("#say", Input).focus()

    def action_keys(self) -> None:
        """Leave the chat line, so that keys act again."""
        self.query_one("#stage", DataTable).focus()

    @on(Input.Submitted, "#say")
    def _send_chat(self, event: Input.Submitted) -> None:
        text = sent(event.value)
        problem = too_long("That line", text, CHAT_MAX)
        if problem is not None:  # kept in the box, to shorten: nothing is cut unseen
            self.app.notify(f"{problem} Shorten it and press Enter.", severity="error")
            return
        event.input.value = ""
        if text:
            app = spaces(self.app)
            app.do(app.node.chat(text))

    def action_hand(self) -> None:
        """Raise or lower your hand."""
        me = self.state.members.get(self.me) if self.state else None
        if me is None:
            return
        self._request(ActionKind.LOWER_HAND if me.hand else ActionKind.RAISE_HAND)

    def action_mute_me(self) -> None:
        """Mute or unmute your microphone."""
        me = self.state.members.get(self.me) if self.state else None
        if me is None:
            return
        self._request(ActionKind.UNMUTE if me.muted else ActionKind.MUTE)

    def action_accept_invite(self) -> None:
        """Accept an invitation to speak."""
        self._request(ActionKind.ACCEPT_INVITE)

    def action_decline_invite(self) -> None:
        """Decline an invitation to speak."""
        self._request(ActionKind.DECLINE_INVITE)

    def action_react(self, index: int) -> None:
        """Send a reaction."""
        app = spaces(self.app)
        app.do(app.node.react(EMOJI[index].value))

    def action_volume(self, factor: float) -> None:
        """Play the selected person louder or quieter, for you only."""
        target = self._target()
        if target is None:
            return
        node = spaces(self.app).node
        gain = node.voice.set_volume(target, node.voice.volume(target) * factor)
        self.app.notify(f"{self._person(target)} at {gain:.0%} for you.")
        self._draw_people()

    def action_invite(self) -> None:
        """Invite the selected person to speak."""
        target = self._target()
        if target is not None:
            self._request(ActionKind.INVITE_SPEAKER, target)

    def action_accept_hand(self) -> None:
        """Bring the selected raised hand (or the first in the queue) on stage."""
        state = self.state
        target = self.selected
        if state is None:
            return
        hands = state.hand_queue()
        if target is None or target not in hands:
            target = hands[0] if hands else None
        if target is None:
            self.app.notify("No hands are raised.")
            return
        self._request(ActionKind.ACCEPT_HAND, target)

    def action_audience(self) -> None:
        """Move the selected speaker to the audience."""
        target = self._target()
        if target is not None:
            self._request(ActionKind.MAKE_LISTENER, target)

    def action_mute_member(self) -> None:
        """Mute the selected speaker."""
        target = self._target()
        if target is not None:
            self._request(ActionKind.MUTE, target)

    def action_cohost(self) -> None:
        """Make the selected person a co-host."""
        target = self._target()
        if target is not None:
            self._request(ActionKind.ADD_COHOST, target)

    def action_remove(self) -> None:
        """Remove the selected person (after asking)."""
        self._confirmed(ActionKind.REMOVE, "Remove {name} from the Space? They can join again.")

    def action_block(self) -> None:
        """Block the selected person (after asking)."""
        self._confirmed(ActionKind.BLOCK, "Block {name}? They cannot come back to this Space.")

    def _confirmed(self, kind: ActionKind, question: str) -> None:
        target = self._target()
        if target is None:
            return
        name = self._person(target)

        def answer(yes: bool | None) -> None:
            if yes:
                self._request(kind, target)

        verb = "Remove" if kind is ActionKind.REMOVE else "Block"
        self.app.push_screen(Confirm(question.format(name=name), f"{verb} {name}"), answer)

    def action_title(self) -> None:
        """Rename the Space."""
        if self.state is None:
            return

        def answer(title: str | None) -> None:
            if title:
                self._request(ActionKind.SET_TITLE, text=title)

        self.app.push_screen(TitleDialog(self.state.title), answer)

    def action_record(self) -> None:
        """Start or stop recording."""
        if self.state is not None:
            self._request(ActionKind.SET_RECORDING, flag=not self.state.recording)

    def action_end(self) -> None:
        """End the Space for everyone (after asking)."""

        def answer(yes: bool | None) -> None:
            if yes:
                self._request(ActionKind.END)

        self.app.push_screen(Confirm("End the Space for everyone?", "End the Space"), answer)

    def _invitation(self, by: NodeId) -> None:
        inviter = self._person(by)

        def answer(accept: bool | None) -> None:
            self._request(ActionKind.ACCEPT_INVITE if accept else ActionKind.DECLINE_INVITE)

        self.app.push_screen(Invitation(inviter), answer)
