"""The console: events as sentences with typed commands (``--plain``), or JSON (``--headless``).

Headless, it is one JSON object per line each way; docs/headless.md is the reference.  A bad
command line is answered with an ``error`` event (code ``bad_command``) and the node carries on.
Plain, events are told as sentences (:mod:`p2pspaces.app.words`) and a typed line is chat or a
``/command``; at a terminal the line being typed stays below the output (readline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from p2pspaces.app.qr import qr_lines
from p2pspaces.app.words import Narrator, printable
from p2pspaces.core.errors import AlreadyTold, CommandError, ErrorCode
from p2pspaces.core.events import ErrorEvent, Event, Notice, RoomList, StateChanged, WebReady
from p2pspaces.core.identity import NodeId, fingerprint, short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.voice import MIC_CHECK_S

MAX_COMMAND = 64 * 1024
log = logging.getLogger(__name__)


class BadCommand(Exception):
    """A command line that cannot be understood."""


def resolve_member(state: RoomState, ref: str) -> NodeId:
    """A member's key from a name, a hex id or prefix, or a (short) fingerprint."""
    members = state.members
    candidates = set(members) | state.blocked
    wanted = ref.strip().lower()
    named = [k for k, m in members.items() if m.name.lower() == wanted]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        listed = ", ".join(f"{printable(members[k].name)} {short_fingerprint(k)}" for k in named)
        raise BadCommand(
            f"{len(named)} members are named {printable(ref)!r}: {listed}; "
            "give the short fingerprint instead of the name"
        )
    matches = [
        key
        for key in candidates
        if key.hex().startswith(wanted) or fingerprint(key).lower().startswith(wanted)
    ]
    if len(wanted) >= 4 and len(matches) == 1:
        return matches[0]
    if len(wanted) == 64 and not matches:
        return NodeId(bytes.fromhex(wanted))  # e.g. blocking a key that is not a member
    if not matches:
        raise BadCommand(f"nobody in the room matches {printable(ref)!r}")
    raise BadCommand(f"{len(matches)} members match {printable(ref)!r}; give a longer id")


def _text(command: dict[str, Any], key: str, default: str | None = None) -> str:
    value = command.get(key, default)
    if not isinstance(value, str):
        raise BadCommand(f"{key!r} must be a string")
    return value


async def run_command(node: Node, command: dict[str, Any]) -> None:
    """Carry out one JSON command."""
    name = command.get("cmd")
    if name == "host":
        await node.host(_text(command, "title"), int(_number(command, "max_speakers", 10, 100)))
    elif name == "join":
        await node.join(_text(command, "room"), _number(command, "wait", 10, 600))
    elif name == "leave":
        await node.leave()
    elif name == "chat":
        await node.chat(_text(command, "text"))
    elif name == "react":
        await node.react(_text(command, "emoji"))
    elif name == "request":
        await node.request(_action(node, command))
    elif name == "mic_check":
        await node.voice.mic_check(_number(command, "seconds", MIC_CHECK_S, 10))
    elif name == "rooms":
        node.events.put_nowait(RoomList(node.room_list()))
    elif name == "help":
        node.events.put_nowait(Notice(TYPED_HELP))
    elif name == "state":
        if node.replica is None:
            raise BadCommand("not in a room")
        node.events.put_nowait(StateChanged(node.replica.state))  # the same state: a roster
    else:
        raise BadCommand(f"unknown command {str(name)[:40]!r}")


def _number(command: dict[str, Any], key: str, default: float, most: float) -> float:
    value = command.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= most:
        raise BadCommand(f"{key!r} must be a number from 0 to {most:g}")
    return value


def _action(node: Node, command: dict[str, Any]) -> Action:
    try:
        kind = ActionKind(_text(command, "action"))
    except ValueError:
        known = ", ".join(k.value for k in ActionKind)
        raise BadCommand(f"unknown action; one of: {known}") from None
    target = command.get("target")
    if isinstance(target, str) and node.replica is None:
        raise BadCommand("not in a room")
    key = (
        resolve_member(node.replica.state, target)
        if isinstance(target, str) and node.replica
        else None
    )
    try:
        return Action(kind, key, _text(command, "text", ""), bool(command.get("flag", False)))
    except ValueError as exc:
        raise BadCommand(str(exc)) from None


async def _read_commands(
    node: Node, done: asyncio.Event, prompt: PlainOutput | None, person: Typist | None
) -> None:
    """Read command lines from stdin (a pipe, a file, a terminal or /dev/null alike).

    A thread reads, because the event loop cannot watch regular files or /dev/null.  At a
    terminal in plain mode (``prompt``), readline edits the line and output is printed above it.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(line: bytes) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop has closed: the node is gone
            return False
        return True

    if prompt is not None:
        reader, args = _typed_lines, (deliver, prompt)
    else:
        reader, args = _raw_lines, (deliver,)  # type: ignore[assignment]
    threading.Thread(target=reader, args=args, name="stdin-commands", daemon=True).start()
    while not done.is_set():
        line = await lines.get()
        if not line:
            return  # stdin closed: keep running until a signal or a "quit"
        if len(line) > MAX_COMMAND:
            node.events.put_nowait(ErrorEvent(ErrorCode.BAD_COMMAND, "command line too long"))
            continue
        await _one_line(node, line, done, person)


def _raw_lines(deliver: Callable[[bytes], bool]) -> None:
    # Raw reads on fd 0: a thread blocked inside sys.stdin's buffered reader holds its lock
    # and makes the interpreter abort at exit.
    pending = b""
    while True:
        try:
            chunk = os.read(0, MAX_COMMAND)
        except OSError:
            chunk = b""
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if len(pending) > MAX_COMMAND:
            complete, pending = [*complete, pending], b""
        if not chunk:
            complete.append(b"")
        for line in complete:
            if not deliver(line + b"\n" if line else b""):
                return
        if not chunk:
            return


def _typed_lines(deliver: Callable[[bytes], bool], plain: PlainOutput) -> None:
    import readline  # noqa: F401, PLC0415 - line editing and history for input(), terminals only

    plain.reading = True
    while True:
        try:
            text = input(PROMPT)
        except (EOFError, OSError):
            deliver(b"")
            return
        if not deliver(text.encode() + b"\n"):
            return


PROMPT = "> "


def _terminal_mode() -> list[Any] | None:
    """The terminal's settings, to put back on the way out."""
    try:
        return termios.tcgetattr(0)
    except termios.error:
        return None


class PlainOutput:
    """Sentences for people (``--plain``): printed above the line being typed at a terminal."""

    def __init__(self, out: TextIO, narrator: Narrator, *, terminal: bool) -> None:
        self._out = out
        self.narrator = narrator
        self.terminal = terminal
        self.reading = False
        """Whether a prompt is on screen (output is then printed above it)."""

    def render(self, event: Event) -> str:
        """The event's sentences, one per line ("" for events that are only indicators); the
        web page's address comes with its QR code for phones to scan."""
        text = "\n".join(line.text for line in self.narrator.tell(event))
        if isinstance(event, WebReady):
            text += "\n" + "\n".join(qr_lines(event.http))
        return text

    def show(self, event: Event) -> None:
        """Print the event's sentences, keeping the typed line intact below them."""
        text = self.render(event)
        if not text:
            return
        if not (self.terminal and self.reading):
            self._out.write(text + "\n")
        else:
            import readline  # noqa: PLC0415 - terminals only

            typed = readline.get_line_buffer()
            self._out.write(f"\r\x1b[K{text}\n{PROMPT}{typed}")
        self._out.flush()


# Typed commands for people at a terminal (not headless): "/name [args]"; other text is chat.
TYPED: dict[str, tuple[str, bool]] = {
    "hand": ("raise_hand", False),
    "lower": ("lower_hand", False),
    "invite": ("invite_speaker", True),
    "yes": ("accept_invite", False),
    "no": ("decline_invite", False),
    "accept": ("accept_hand", True),
    "listener": ("make_listener", False),
    "mute": ("mute", False),
    "unmute": ("unmute", False),
    "remove": ("remove", True),
    "block": ("block", True),
    "cohost": ("add_cohost", True),
    "uncohost": ("remove_cohost", False),
    "end": ("end", False),
}
WITH_ARGUMENT = {"join": "room", "host": "title", "react": "emoji"}
ALONE = {
    "quit": "quit",
    "leave": "leave",
    "state": "state",
    "help": "help",
    "miccheck": "mic_check",
    "mic": "mic_check",
}
"""Typed commands that take nothing after them, and the command each is."""
TYPED_HELP = (
    "commands: /hand /lower /invite NAME /yes /no /accept NAME /listener [NAME] /mute [NAME] "
    "/unmute /remove NAME /block NAME /cohost NAME /uncohost [NAME] /title TEXT /record on|off "
    "/end /react clap|heart|laugh|hundred|raised|thinking|fire|wave /leave /join ROOM "
    "/host TITLE /state /miccheck (hear yourself as the room does) /help /quit; anything else "
    "is sent as chat"
)


def typed_command(text: str) -> dict[str, Any]:
    """Turn a line typed at the terminal into a command object."""
    if not text.startswith("/"):
        return {"cmd": "chat", "text": text}
    typed, _, rest = text[1:].partition(" ")
    word = typed.lower()
    rest = rest.strip()
    if word in ALONE:
        return {"cmd": ALONE[word]}
    if word in WITH_ARGUMENT:
        return {"cmd": word, WITH_ARGUMENT[word]: rest}
    if word == "title":
        return {"cmd": "request", "action": "set_title", "text": rest}
    if word == "record":
        return {"cmd": "request", "action": "set_recording", "flag": rest == "on"}
    if word not in TYPED:
        raise BadCommand(
            f"Unknown command /{printable(typed)[:40]}. {TYPED_HELP[:1].upper()}{TYPED_HELP[1:]}"
        )
    action, needs_target = TYPED[word]
    if needs_target and not rest:
        raise BadCommand(f"/{word} needs a member's name or id")
    return {"cmd": "request", "action": action} | ({"target": rest} if rest else {})


@dataclass
class Typist:
    """A person typing commands at a terminal (not a script speaking JSON)."""

    warned: bool = False
    """Told that /quit ends the Space for the others (the next /quit does)."""


def _quit(node: Node, done: asyncio.Event, person: Typist | None) -> None:
    """Quit; a person who is the only host of a Space with others in it is asked first (the
    second /quit ends it), as the app asks."""
    others = node.quitting_ends_space_for()
    if person is not None and others and not person.warned:
        person.warned = True
        people = "1 other person" if others == 1 else f"{others} others"
        node.events.put_nowait(
            Notice(
                f"You are the host and there is no co-host: quitting ends the Space for "
                f"{people}. Type /quit (or press Ctrl+C) again to end it and quit, or "
                "/cohost NAME first."
            )
        )
        return
    done.set()


def _failed(node: Node, exc: CommandError) -> None:
    """Say why a command failed, unless an event said it already."""
    if not isinstance(exc, AlreadyTold):
        node.events.put_nowait(ErrorEvent(ErrorCode.COMMAND_FAILED, str(exc)))


async def _one_line(
    node: Node, line: bytes, done: asyncio.Event, person: Typist | None = None
) -> None:
    """Carry out one command line (from ``person``, if a person types them)."""
    text = line.decode(errors="replace").strip()
    if not text:
        return
    try:
        command = json.loads(text) if text.startswith("{") else typed_command(text)
        if not isinstance(command, dict):
            raise BadCommand("a command is a JSON object")
        if command.get("cmd") == "quit":
            _quit(node, done, person if not text.startswith("{") else None)
            return
        await run_command(node, command)
    except json.JSONDecodeError as exc:
        node.events.put_nowait(ErrorEvent(ErrorCode.BAD_COMMAND, f"not JSON: {exc.msg}"))
    except BadCommand as exc:
        node.events.put_nowait(ErrorEvent(ErrorCode.BAD_COMMAND, str(exc)))
    except CommandError as exc:
        _failed(node, exc)
    except Exception:  # a bug of ours: say so and keep reading commands
        log.exception("command failed unexpectedly: %s", text[:200])
        node.events.put_nowait(
            ErrorEvent(ErrorCode.INTERNAL_ERROR, "that command hit a bug; see the log")
        )


async def _print_events(node: Node, show: Callable[[Event], None]) -> None:
    while True:
        show(await node.events.get())


def _print_json(event: Event) -> None:
    sys.stdout.write(as_json_line(event) + "\n")
    sys.stdout.flush()


def as_json_line(event: Event) -> str:
    """The headless rendering of an event."""
    return json.dumps(event.as_json(), ensure_ascii=False, separators=(",", ":"))


async def _start(
    node: Node, host_title: str | None, join_ref: str | None, max_speakers: int
) -> None:
    await node.start()
    if host_title is not None:
        await node.host(host_title, max_speakers)
    elif join_ref is not None:
        await node.join(join_ref)


async def run(
    node: Node,
    *,
    headless: bool,
    host_title: str | None,
    join_ref: str | None,
    max_speakers: int,
    read_stdin: bool,
) -> int:
    """Run ``node`` until SIGINT, SIGTERM or ``quit``; return the exit code.

    The node outlives its room: after the room ends, or after ``leave``, removal or a block,
    it stays up (back in the lobby) so that a script can host or join again; docs/headless.md
    says so.  A signal while the first host or join is still waiting stops it at once.
    """
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    plain = None
    if not headless:
        terminal = read_stdin and sys.stdin.isatty() and sys.stdout.isatty()
        plain = PlainOutput(sys.stdout, Narrator(node.node_id), terminal=terminal)
    person = Typist() if plain is not None and plain.terminal else None
    loop.add_signal_handler(signal.SIGINT, _quit, node, done, person)  # Ctrl+C asks as /quit
    loop.add_signal_handler(signal.SIGTERM, done.set)
    saved = _terminal_mode() if plain is not None and plain.terminal else None
    show = plain.show if plain is not None else _print_json
    printer = asyncio.ensure_future(_print_events(node, show))
    tasks = [printer]
    status = 0
    try:
        starting = asyncio.ensure_future(_start(node, host_title, join_ref, max_speakers))
        stopping = asyncio.ensure_future(done.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        else:
            starting.result()
            if read_stdin:
                prompt = plain if plain is not None and plain.terminal else None
                tasks.append(asyncio.ensure_future(_read_commands(node, done, prompt, person)))
            await stopping
        stopping.cancel()
    except CommandError as exc:
        _failed(node, exc)
        status = 1
    finally:
        await node.stop()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        while not node.events.empty():  # the last events (left, ended) still get printed
            show(node.events.get_nowait())
        if plain is not None and plain.terminal:
            sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()
        if saved is not None:  # readline may be mid-line in raw mode: give the shell its tty
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status
