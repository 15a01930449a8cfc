"""Every key of the app, in one table: the bindings, the help screen (F1) and the command
palette (Ctrl+P) are all built from it, so that they cannot drift apart.

Each key says who may use it.  A screen hides keys its user cannot use (the footer and the
palette leave them out); pressed anyway, such a key says why it does nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from textual.binding import Binding

from p2pspaces.app.words import glyph
from p2pspaces.core.wire import Emoji


class Who(enum.Enum):
    """Who a key is for, and what it says to someone else who presses it."""

    EVERYONE = ""
    LISTENERS = "You are on stage already."
    ON_STAGE = "Listeners are not heard; raise your hand (H) to speak."
    INVITED = "Nobody has invited you to speak."
    MODERATORS = "Only the host and co-hosts can do that."


@dataclass(frozen=True, slots=True)
class Key:
    """One key: what it does, for whom, and whether the footer shows it."""

    keys: str
    """Textual key names, comma-separated."""
    action: str
    label: str
    """A few words, for the footer and the palette."""
    does: str
    """What it does, for the help screen and the palette."""
    who: Who = Who.EVERYONE
    footer: bool = False
    display: str | None = None
    """How the help and the footer write the key (default: from ``keys``)."""
    title: str | None = None
    """The palette's name for it, if not ``label`` (the palette searches names only)."""

    @property
    def named(self) -> str:
        """What the palette calls it."""
        return self.title or self.label

    @property
    def shown(self) -> str:
        """The key as people write it: "H", "Ctrl+L", "+"."""
        if self.display is not None:
            return self.display
        first = self.keys.split(",")[0]
        return "+".join(part.capitalize() if len(part) > 1 else part.upper()
                        for part in first.split("+"))  # fmt: skip

    @property
    def name(self) -> str:
        """The action's method name, without its namespace and parameters."""
        return self.action.split(".")[-1].split("(")[0]


def bindings(keys: Iterable[Key]) -> list[Binding]:
    """Textual bindings for ``keys``."""
    return [Binding(k.keys, k.action, k.label, show=k.footer, key_display=k.display) for k in keys]


EMOJI = tuple(Emoji)
REACTIONS = tuple(
    Key(str(n + 1), f"react({n})", "React", f"send {glyph(e.value)} to the room",
        footer=n == 0, display="1-8" if n == 0 else None,
        title=f"React {glyph(e.value)} {e.name.lower()}")
    for n, e in enumerate(EMOJI)
)  # fmt: skip

LOBBY = (
    Key("enter", "join", "Join", "join the selected Space (↑ ↓ choose)", footer=True,
        display="Enter"),
    Key("h", "host", "Host a Space", "host a new Space", footer=True),
    Key("a", "address", "Join by address",
        "join by the address on the host's screen (when no Space shows up)", footer=True),
    Key("f1", "app.help", "Help", "every key, in one place", footer=True),
    Key("ctrl+t", "app.mic_check", "Mic check", "hear yourself as the room does: 3 s recorded, "
        "then played back", title="Microphone check (hear yourself)"),
    Key("ctrl+q", "app.quit_app", "Quit", "quit", footer=True),
)  # fmt: skip

ROOM = (
    Key("c", "chat", "Chat", "chat: type, Enter sends, Esc goes back to the keys", footer=True),
    Key("h", "hand", "Hand", "raise or lower your hand (ask to speak)", Who.LISTENERS,
        footer=True),
    Key("m", "mute_me", "Mute me", "mute or unmute your microphone (the meter is at the bottom)",
        Who.ON_STAGE, footer=True),
    Key("y", "accept_invite", "Accept invite", "accept an invitation to speak", Who.INVITED,
        footer=True),
    Key("n", "decline_invite", "Decline invite", "decline an invitation to speak", Who.INVITED,
        footer=True),
    *REACTIONS,
    Key("plus,equals_sign", "volume(1.25)", "Louder", "play the selected person louder, for you",
        display="+", title="Louder (volume up)"),
    Key("minus", "volume(0.8)", "Quieter", "play the selected person quieter, for you",
        display="-", title="Quieter (volume down)"),
    Key("pageup", "scroll_log(-1)", "Scroll chat up", "scroll the chat and activity up",
        display="PgUp"),
    Key("pagedown", "scroll_log(1)", "Scroll chat down", "scroll the chat and activity down",
        display="PgDn"),
    Key("w", "phones", "Phones", "how phones join from their browser (QR code)", footer=True),
    Key("ctrl+t", "app.mic_check", "Mic check", "hear yourself as the room does: 3 s recorded, "
        "then played back", title="Microphone check (hear yourself)"),
    Key("ctrl+e", "headphones", "Headphones", "you wear headphones: echo cancellation off "
        "(again: back on)", title="Headphones (echo cancellation off or on)"),
    Key("i", "invite", "Invite", "invite the selected person to speak", Who.MODERATORS,
        footer=True),
    Key("a", "accept_hand", "Accept hand", "bring the selected raised hand on stage",
        Who.MODERATORS, footer=True),
    Key("l", "audience", "To audience", "move the selected speaker to the audience",
        Who.MODERATORS),
    Key("x", "mute_member", "Mute them", "mute the selected speaker", Who.MODERATORS),
    Key("r", "remove", "Remove", "remove the selected person (they can come back)",
        Who.MODERATORS),
    Key("b", "block", "Block", "block the selected person (they cannot come back)",
        Who.MODERATORS),
    Key("o", "cohost", "Co-host", "make the selected person a co-host (takes over if the "
        "host's laptop dies)", Who.MODERATORS),
    Key("t", "title", "Title", "change the Space's title", Who.MODERATORS),
    Key("ctrl+r", "record", "Record", "start or stop recording", Who.MODERATORS),
    Key("e", "end", "End", "end the Space for everyone", Who.MODERATORS),
    Key("ctrl+l", "app.leave_room", "Leave", "leave the Space", footer=True),
    Key("f1", "app.help", "Help", "every key, in one place", footer=True),
    Key("escape", "keys", "Keys", "leave the chat line, so that keys act again",
        display="Esc"),
)  # fmt: skip

SECTIONS = (
    ("In a Space, for everyone", Who.EVERYONE),
    ("For listeners", Who.LISTENERS),
    ("When invited to speak", Who.INVITED),
    ("On stage", Who.ON_STAGE),
    ("For hosts and co-hosts (on the selected person)", Who.MODERATORS),
)


def _rows(keys: Iterable[Key]) -> list[str]:
    rows = ["| Key | Does |", "|---|---|"]
    reactions = " ".join(glyph(e.value) for e in EMOJI)
    for key in keys:
        if key in REACTIONS[1:]:
            continue
        does = f"react: {reactions}" if key is REACTIONS[0] else key.does
        rows.append(f"| **{key.shown}** | {does} |")
    return rows


def help_text() -> str:
    """The help screen, as Markdown, from the tables above."""
    lines = [
        "# p2pspaces",
        "",
        "Audio rooms on this network, with no server. **Keys work when the chat line is not "
        "focused** (press **Esc** to leave it, **C** to go back to it). **Ctrl+P** searches "
        "every action you can use now. **Tab** moves between the lists and the chat; ↑ ↓ move "
        "within a list and on to the next.",
        "",
        "## In the lobby",
        *_rows(LOBBY),
    ]
    for title, who in SECTIONS:
        lines += ["", f"## {title}", *_rows(k for k in ROOM if k.who is who)]
    lines += [
        "",
        "**Fingerprints** (like `ABCD-EFGH`) tell people apart: names can be copied, keys "
        "cannot. Where two people share a name, the app writes their fingerprints beside it. "
        "A ✓ marks people you have met before; **!** warns that a name you know comes with "
        "another key.",
    ]
    return "\n".join(lines) + "\n"
