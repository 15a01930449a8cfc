"""What happens in a Space, in words: "Hana muted Ann", "Cody is hosting now".

The node's events carry keys and signed changes; people want sentences.  A :class:`Narrator`
follows one node's event stream (it remembers the last room state, so that it can name people
who have just left and the host that went quiet) and turns each event into zero or more
:class:`Line` objects.  The ``--plain`` console prints them; the terminal app shows them as
notices and in its activity log.  Names from the network are made printable first.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pspaces.core.events import (
    AuthorityChanged,
    ChatReceived,
    Converged,
    Ended,
    ErrorEvent,
    Event,
    HeardBy,
    Joined,
    Left,
    MicCheck,
    Notice,
    Out,
    ReactionReceived,
    Ready,
    Recording,
    RoomFound,
    RoomList,
    RoomLost,
    Speaking,
    StateChanged,
    WebReady,
)
from p2pspaces.core.identity import NodeId, grouped_hex, short_fingerprint
from p2pspaces.core.room import Role, RoomState
from p2pspaces.core.wire import Action, ActionKind


def printable(text: str) -> str:
    """Text from peers made safe for a terminal (STYLE.md: escape untrusted text)."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def glyph(emoji: str) -> str:
    """An emoji as a terminal draws it in the width it is counted: without the variation
    selector (terminals draw "❤️" two cells wide where layout counts one, shifting columns)."""
    return emoji.replace("\ufe0f", "")


CHAT_LINES_SHOWN = 12
"""A chat message shows at most this many lines."""

CAUGHT_UP_NAMED = 5
"""After a whole new state, up to this many comings and goings are told by name."""


def called(name: str, node: bytes, state: RoomState | None) -> str:
    """A person's name made printable, with their short fingerprint where someone else in the
    room goes by the same name ("Ann (D323-ELWC)"): "Bob removed Ann" must say which Ann."""
    wanted = name.casefold()
    shared = state is not None and any(
        other != node and member.name.casefold() == wanted
        for other, member in state.members.items()
    )
    text = printable(name)
    return f"{text} ({short_fingerprint(node)})" if shared else text


class Tone(enum.Enum):
    """How a line should be shown."""

    INFO = "info"
    CHAT = "chat"
    ASK = "ask"
    """Something the user is asked to answer (an invitation to speak)."""
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence for the user."""

    text: str
    tone: Tone = Tone.INFO


def role_word(role: Role) -> str:
    """A role as people say it."""
    return {
        Role.HOST: "host",
        Role.COHOST: "co-host",
        Role.SPEAKER: "speaker",
        Role.LISTENER: "listener",
    }[role]


def room_line(room: RoomFound, join: str = "/join") -> str:
    """A live Space in one line: title, host, counts, badges, and how to join it."""
    badges = ""
    if room.recording:
        badges += " [REC]"
    if room.host_trust == "known":
        badges += " [met before]"
    elif room.host_trust == "clash":
        badges += f" [! not the {printable(room.host_name)} you met before]"
    return (
        f"{printable(room.title)!r} hosted by {printable(room.host_name)} "
        f"({short_fingerprint(room.host)}): {room.speakers} on stage, {room.listeners} "
        f"listening{badges}; join with {join} {room.room.hex()[:8]}"
    )


def roster(state: RoomState) -> str:
    """Who is in the room, by role, with fingerprints to type."""
    parts = []
    for node, member in sorted(state.members.items(), key=lambda kv: (-kv[1].role, kv[1].name)):
        flags = [role_word(member.role)]
        if node == state.authority and member.role is not Role.HOST:
            flags.append("acting host")
        if member.muted:
            flags.append("muted")
        if member.hand:
            flags.append("hand up")
        if member.invited:
            flags.append("invited")
        parts.append(f"{printable(member.name)} {short_fingerprint(node)} ({', '.join(flags)})")
    rec = " Recording." if state.recording else ""
    return f"In {printable(state.title)!r}: " + "; ".join(parts) + "." + rec


@dataclass(frozen=True, slots=True)
class _Change:
    """One signed change, with its people named from this node's point of view."""

    action: Action
    who: str
    subject: str
    """The actor's name at the start of a sentence ("You", "Hana")."""
    whom: str
    mine: bool
    to_me: bool
    on_self: bool
    moderating: bool


def _lines(text: str, tone: Tone = Tone.INFO) -> list[Line]:
    return [Line(text, tone)]


def _hand(c: _Change) -> list[Line]:
    if c.mine:
        return _lines("Your hand is up; the host can bring you on stage.")
    return _lines(f"{c.subject} raised a hand.", Tone.ASK) if c.moderating else []


def _lower(c: _Change) -> list[Line]:
    if not c.on_self:
        return _lines(f"{c.subject} lowered {c.whom}'s hand.")
    return _lines("Your hand is down.") if c.mine else []


def _invite(c: _Change) -> list[Line]:
    if c.to_me:
        return _lines(
            f"{c.subject} invites you to speak: /yes to accept, /no to decline.", Tone.ASK
        )
    return _lines(f"{c.subject} invited {c.whom} to speak.")


def _audience(c: _Change) -> list[Line]:
    if c.on_self:
        return _lines(f"{c.subject} left the stage.")
    return _lines(f"{c.subject} moved {c.whom} to the audience.")


def _mute(c: _Change) -> list[Line]:
    verb = "muted" if c.action.kind is ActionKind.MUTE else "unmuted"
    if c.on_self:
        return _lines(f"{c.subject} {verb} {'your' if c.mine else 'their'} microphone.")
    return _lines(f"{c.subject} {verb} {c.whom}.", Tone.WARN if c.to_me else Tone.INFO)


def _out(c: _Change) -> list[Line]:
    verb = "removed" if c.action.kind is ActionKind.REMOVE else "blocked"
    return _lines(f"{c.subject} {verb} {c.whom}.", Tone.WARN)


def _uncohost(c: _Change) -> list[Line]:
    if c.on_self:
        return _lines(f"{c.subject} stepped down as co-host.")
    return _lines(f"{c.subject} removed {c.whom} as co-host.")


def _recording(c: _Change) -> list[Line]:
    verb = "started" if c.action.flag else "stopped"
    return _lines(f"Recording {verb} by {c.who}.", Tone.WARN if c.action.flag else Tone.INFO)


_WORDS: dict[ActionKind, Callable[[_Change], list[Line]]] = {
    ActionKind.JOIN: lambda c: [] if c.mine else _lines(f"{c.subject} joined."),
    ActionKind.LEAVE: lambda c: [] if c.mine else _lines(f"{c.subject} left."),
    ActionKind.DROP: lambda c: _lines(f"{c.whom} lost their connection and was dropped."),
    ActionKind.RAISE_HAND: _hand,
    ActionKind.LOWER_HAND: _lower,
    ActionKind.INVITE_SPEAKER: _invite,
    ActionKind.ACCEPT_INVITE: lambda c: _lines(
        f"{c.subject} {'are' if c.mine else 'is'} on stage now."
    ),
    ActionKind.DECLINE_INVITE: lambda c: _lines(f"{c.subject} declined to speak."),
    ActionKind.ACCEPT_HAND: lambda c: _lines(f"{c.subject} brought {c.whom} on stage."),
    ActionKind.MAKE_LISTENER: _audience,
    ActionKind.MUTE: _mute,
    ActionKind.UNMUTE: _mute,
    ActionKind.REMOVE: _out,
    ActionKind.BLOCK: _out,
    ActionKind.ADD_COHOST: lambda c: _lines(f"{c.subject} made {c.whom} a co-host."),
    ActionKind.REMOVE_COHOST: _uncohost,
    ActionKind.SET_TITLE: lambda c: _lines(
        f"{c.subject} renamed the Space to {printable(c.action.text)!r}."
    ),
    ActionKind.SET_RECORDING: _recording,
}
"""END says nothing here: the ``ended`` event does."""


def heard_by(event: HeardBy) -> list[Line]:
    """Who hears us, said when it changes while we speak."""
    if event.of == 0:
        return []
    if event.heard == event.of:
        return [Line(f"Everyone hears you ({event.heard} of {event.of}).")]
    words = [f"Heard by {event.heard} of {event.of}."]
    if event.deaf:
        words.append(f"Not heard at all by {_names(event.deaf)}: their audio may be off.")
    if event.quiet:
        words.append(
            f"Heard very quietly by {_names(event.quiet)}: speak closer to the microphone."
        )
    return [Line(" ".join(words), Tone.WARN)]


def mic_check(event: MicCheck) -> list[Line]:
    """A microphone check, stage by stage."""
    if event.stage == "recording":
        return [Line(f"Microphone check: speak now, for {event.seconds:g} seconds…", Tone.ASK)]
    if event.stage == "playing":
        return [Line("Playing it back: this is how the room hears you.")]
    tone = Tone.INFO if event.verdict == "good" else Tone.WARN
    loudest = f" (loudest {event.peak_db:.0f} dBFS)" if event.verdict != "silent" else ""
    words = event.words[:1].upper() + event.words[1:]
    return [Line(f"Microphone check done. {words}{loudest}.", tone)]


def _names(names: tuple[str, ...]) -> str:
    shown = [printable(name) for name in names[:5]]
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    return ", ".join(shown) + more


class Narrator:
    """Turns one node's events into sentences."""

    def __init__(self, me: bytes, *, keys: bool = False) -> None:
        """``keys``: the reader has the app's keys, not typed /commands."""
        self.me = me
        self.keys = keys
        self.state: RoomState | None = None
        self._handlers: dict[type[Event], Callable[[Any], list[Line]]] = {
            Ready: self._ready,
            WebReady: self._web,
            RoomFound: self._room_found,
            RoomLost: lambda e: [],
            RoomList: self._room_list,
            Joined: self._joined,
            StateChanged: self._state,
            ChatReceived: self._chat,
            ReactionReceived: self._reaction,
            AuthorityChanged: self._authority,
            Recording: self._recording,
            Converged: self._converged,
            Ended: self._ended,
            Left: self._left,
            ErrorEvent: self._error,
            Notice: lambda e: [Line(e.text)],
            Speaking: self._speaking,
            HeardBy: heard_by,
            MicCheck: mic_check,
        }
        self._last_speaker: bytes | None = None
        self.join_addresses: tuple[str, ...] = ()

    def tell(self, event: Event) -> list[Line]:
        """The sentences for ``event`` (none for the ones that are only indicators)."""
        handler = self._handlers.get(type(event))
        return handler(event) if handler is not None else []

    def name(self, node: bytes | None, *, state: RoomState | None = None) -> str:
        """A person's name ("you" for this node), from the newest state that has them."""
        if node is None:
            return "someone"
        if node == self.me:
            return "you"
        for known in (state, self.state):
            member = known.members.get(NodeId(node)) if known is not None else None
            if member is not None:
                return called(member.name, node, known)
        return short_fingerprint(node)

    # --- the lobby -----------------------------------------------------------------------

    def _ready(self, event: Ready) -> list[Line]:
        self.me = event.node
        self.join_addresses = tuple(f"{a}:{event.port}" for a in event.addresses)
        hint = (
            "H hosts one; F1 shows every key."
            if self.keys
            else ("/host TITLE starts one. Type /help for commands.")
        )
        return [
            Line(
                f"Hello {printable(event.name)} ({short_fingerprint(event.node)}). Looking for "
                f"Spaces on this network; {hint}"
            )
        ]

    def _web(self, event: WebReady) -> list[Line]:
        show = "W shows its QR code" if self.keys else "its QR code is below"
        return [
            Line(
                f"Phones can join this Space from their browser at {event.http} ({show}). "
                f"To speak they use the secure page {event.https}: the browser warns that this "
                f"node made its own certificate; its SHA-256 fingerprint begins "
                f"{grouped_hex(event.cert_sha256)[:23]}."
            )
        ]

    def _room_found(self, event: RoomFound) -> list[Line]:
        state = self.state
        if state is not None and (event.changed or event.room == state.room_id):
            return []  # the room's own news is told by its state; other rooms' counts are noise
        verb = "Space changed" if event.changed else "Space found"
        tone = Tone.WARN if event.host_trust == "clash" else Tone.INFO
        return [Line(f"{verb}: {room_line(event)}", tone)]

    def _room_list(self, event: RoomList) -> list[Line]:
        if not event.rooms:
            return [Line("No Spaces found on this network yet; still looking.")]
        return [Line(room_line(room)) for room in event.rooms]

    # --- the room ------------------------------------------------------------------------

    def _joined(self, event: Joined) -> list[Line]:
        if event.host:
            where = " or ".join(self.join_addresses) or "this node's address"
            return [
                Line(
                    f"You are hosting {printable(event.title)!r}. Where multicast is filtered, "
                    f"others join with: p2pspaces start --join {where}"
                )
            ]
        if event.reclaiming:
            return [Line(f"You are back in {printable(event.title)!r}; taking your Space back…")]
        hand = "H" if self.keys else "/hand"
        return [Line(f"You joined {printable(event.title)!r} as a listener. {hand} asks to speak.")]

    def _state(self, event: StateChanged) -> list[Line]:
        before, after = self.state, event.state
        self.state = after
        if event.action is None:
            if before is None or before is after:
                return [Line(roster(after))]
            return self._caught_up(before, after)
        return self._change(before, after, event.actor, event.action)

    def _caught_up(self, before: RoomState, after: RoomState) -> list[Line]:
        """A whole new state (a snapshot after this node fell out of step, or a new host's):
        what changed that people would notice, since the changes themselves were not seen."""
        if before.room_id != after.room_id:
            return [Line(roster(after))]
        lines = []
        if after.title != before.title:
            lines.append(Line(f"The Space is now called {printable(after.title)!r}."))
        lines.extend(self._own_changes(before, after))
        gone = [n for n in before.members if n not in after.members and n != self.me]
        if after.authority != before.authority:  # the host's leaving is told by AuthorityChanged
            gone = [n for n in gone if n != before.authority]
        came = [n for n in after.members if n not in before.members and n != self.me]
        if len(gone) + len(came) > CAUGHT_UP_NAMED:
            return [*lines, Line(f"{len(came)} joined and {len(gone)} left meanwhile.")]
        for node in gone:
            name = self.name(node, state=before)
            out = "was blocked" if node in after.blocked else "is no longer in the Space"
            lines.append(Line(f"{name} {out}.", Tone.WARN if node in after.blocked else Tone.INFO))
        lines.extend(Line(f"{self.name(node, state=after)} joined.") for node in came)
        return lines

    def _own_changes(self, before: RoomState, after: RoomState) -> list[Line]:
        """What changed for this node itself, from one whole state to the next."""
        was, now = before.members.get(NodeId(self.me)), after.members.get(NodeId(self.me))
        if was is None or now is None:
            return []
        lines = []
        if now.role != was.role:
            article = "the" if now.role is Role.HOST else "a"
            lines.append(Line(f"You are {article} {role_word(now.role)} now.", Tone.WARN))
        if now.muted != was.muted:
            lines.append(Line("You are muted." if now.muted else "You are unmuted.", Tone.WARN))
        if now.invited and not was.invited:
            answer = "Y accepts, N declines" if self.keys else "/yes to accept, /no to decline"
            lines.append(Line(f"You are invited to speak: {answer}.", Tone.ASK))
        return lines

    def _change(
        self, before: RoomState | None, after: RoomState, actor: bytes | None, action: Action
    ) -> list[Line]:
        who = self.name(actor, state=before)
        change = _Change(
            action=action,
            who=who,
            subject=who[:1].upper() + who[1:],
            whom=self.name(action.target, state=before),
            mine=actor == self.me,
            to_me=action.target == self.me,
            on_self=action.target is None or action.target == actor,
            moderating=self.me in after.authority_set(),
        )
        if action.kind is ActionKind.INVITE_SPEAKER and change.to_me and self.keys:
            return [
                Line(f"{change.subject} invites you to speak: Y accepts, N declines.", Tone.ASK)
            ]
        say = _WORDS.get(action.kind)
        return say(change) if say is not None else []

    def _chat(self, event: ChatReceived) -> list[Line]:
        earlier = "(earlier) " if event.earlier else ""
        who = called(event.name, event.author, self.state)
        lines = event.text.split("\n")
        if len(lines) > CHAT_LINES_SHOWN:  # a wall of blank lines would push the room away
            more = len(lines) - CHAT_LINES_SHOWN + 1
            lines = [*lines[: CHAT_LINES_SHOWN - 1], f"… ({more} more lines)"]
        text = "\n  ".join(printable(line) for line in lines)
        return [Line(f"{earlier}{who}: {text}", Tone.CHAT)]

    def _speaking(self, event: Speaking) -> list[Line]:
        """Who is talking, said when the voice changes (not at every pause and breath)."""
        if self.keys or event.member in (self.me, self._last_speaker):  # the app shows a dot
            return []
        self._last_speaker = event.member
        return [Line(f"{called(event.name, event.member, self.state)} is speaking.")]

    def _reaction(self, event: ReactionReceived) -> list[Line]:
        who = called(event.name, event.author, self.state)
        return [Line(f"{who} reacts {glyph(event.emoji)}", Tone.CHAT)]

    def _authority(self, event: AuthorityChanged) -> list[Line]:
        previous = event.previous
        mine = event.authority == self.me
        new = "You are" if mine else f"{called(event.name, event.authority, self.state)} is"
        if previous is None or previous == event.authority:
            return [Line(f"{new} hosting the Space now.")]
        old = self.name(previous)
        state = self.state
        if event.took_over:
            why = f"{old}'s laptop went quiet"
        elif state is not None and state.host == event.authority:
            why = "the host is back"
        else:
            why = f"{old} handed it over"
        return [Line(f"{new} hosting now ({why}).", Tone.WARN)]

    def _recording(self, event: Recording) -> list[Line]:
        if event.on:
            return [Line(f"Recording the Space to {event.path}.")]
        return [Line(f"Recording saved in {event.path}.")]

    def _converged(self, event: Converged) -> list[Line]:
        undone = f"; {event.undone} change(s) made on this side were undone" if event.undone else ""
        return [Line(f"The network healed and the room is whole again{undone}.", Tone.WARN)]

    def _ended(self, event: Ended) -> list[Line]:
        self.state = None
        if event.by_me:
            return [Line("You ended the Space.")]
        reason = printable(event.reason)
        if reason.endswith("ended the Space"):  # "Hana ended the Space."
            return [Line(f"{reason[:1].upper()}{reason[1:]}.", Tone.WARN)]
        return [Line(f"The Space ended: {reason}.", Tone.WARN)]

    def _left(self, event: Left) -> list[Line]:
        self.state = None
        if event.how is Out.LEFT:
            return [Line("You left the Space.")]
        return [Line(f"You are out of the Space: {event.reason}.", Tone.ERROR)]

    def _error(self, event: ErrorEvent) -> list[Line]:
        reason = printable(event.reason).rstrip(".")  # each sentence below ends with one
        words = {
            "refused": f"Not allowed: {reason}.",
            "rate_limited": f"Slow down: {reason}.",
            "join_failed": f"Could not join: {reason}.",
            "link_refused": f"A peer would not connect: {reason}.",
            "authority_lost": f"Lost the link to the host ({reason}); reconnecting.",
            "name_clash": f"Careful: {reason}.",
            "command_failed": f"{reason[:1].upper()}{reason[1:]}.",
            "bad_command": reason,
            "equivocation": f"The host signed two different changes with one number: {reason}.",
            "hosting_not_saved": f"Careful: {reason}.",
            "web_failed": f"Phones cannot join through this node: {reason}.",
            "recording_failed": f"Recording stopped: {reason}.",
        }
        text = words.get(event.code, f"{reason[:1].upper()}{reason[1:]}.")
        tone = Tone.WARN if event.code in ("name_clash", "authority_lost") else Tone.ERROR
        return [Line(text, tone)]
