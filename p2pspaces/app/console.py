"""The console: events as readable lines with typed commands, or as JSON (``--headless``).

Headless, it is one JSON object per line each way; docs/headless.md is the reference.  A bad
command line is answered with an ``error`` event (code ``bad_command``) and the node carries on.
At a terminal, events are printed as sentences and a typed line is chat or a ``/command``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import (
    ChatReceived,
    ErrorEvent,
    Event,
    Notice,
    ReactionReceived,
    Ready,
    RoomFound,
    RoomList,
    StateChanged,
)
from p2pspaces.core.identity import NodeId, fingerprint, short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node

MAX_COMMAND = 64 * 1024


class BadCommand(Exception):
    """A command line that cannot be understood."""


def printable(text: str) -> str:
    """Text from peers made safe for a terminal (STYLE.md: escape untrusted text)."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _ready(event: Ready) -> str:
    return (
        f"ready: {printable(event.name)} ({short_fingerprint(event.node)}), port {event.port}. "
        "Type a line to chat, /help for commands."
    )


def _room_found(event: RoomFound) -> str:
    verb = "changed" if event.changed else "found"
    return (
        f"room {verb}: {printable(event.title)!r} hosted by {printable(event.host_name)} "
        f"({short_fingerprint(event.host)}), {event.speakers} speaking, "
        f"{event.listeners} listening [{event.room.hex()[:12]}]"
    )


def _state(event: StateChanged) -> str:
    state = event.state
    people = ", ".join(
        f"{printable(m.name)} [{short_fingerprint(key)}] ({m.role.name.lower()}"
        f"{', muted' if m.muted else ''}{', hand up' if m.hand else ''})"
        for key, m in state.members.items()
    )
    return f"room {printable(state.title)!r} epoch {state.epoch} seq {state.seq}: {people}"


def _chat(event: ChatReceived) -> str:
    return f"<{printable(event.name)} {short_fingerprint(event.author)}> {printable(event.text)}"


def _reaction(event: ReactionReceived) -> str:
    return f"<{printable(event.name)} {short_fingerprint(event.author)}> reacts {event.emoji}"


def _error(event: ErrorEvent) -> str:
    return f"error ({event.code}): {printable(event.reason)}"


def _notice(event: Notice) -> str:
    return event.text


_READABLE: dict[type[Event], Callable[[Any], str]] = {
    Notice: _notice,
    Ready: _ready,
    RoomFound: _room_found,
    StateChanged: _state,
    ChatReceived: _chat,
    ReactionReceived: _reaction,
    ErrorEvent: _error,
}


def describe(event: Event) -> str:
    """One readable line for an event (the non-headless output)."""
    render = _READABLE.get(type(event))
    if render is not None:
        return render(event)
    return f"{event.NAME}: " + printable(json.dumps(event.fields(), ensure_ascii=False))


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
        speakers = command.get("max_speakers", 10)
        if not isinstance(speakers, int):
            raise BadCommand("'max_speakers' must be a number")
        await node.host(_text(command, "title"), speakers)
    elif name == "join":
        await node.join(_text(command, "room"), float(command.get("wait", 10)))
    elif name == "leave":
        await node.leave()
    elif name == "chat":
        await node.chat(_text(command, "text"))
    elif name == "react":
        await node.react(_text(command, "emoji"))
    elif name == "request":
        await node.request(_action(node, command))
    elif name == "rooms":
        node.events.put_nowait(RoomList(node.room_list()))
    elif name == "help":
        node.events.put_nowait(Notice(TYPED_HELP))
    elif name == "state":
        if node.replica is None:
            raise BadCommand("not in a room")
        node.events.put_nowait(StateChanged(node.replica.state))
    else:
        raise BadCommand(f"unknown command {str(name)[:40]!r}")


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


async def _read_commands(node: Node, done: asyncio.Event) -> None:
    """Read command lines from stdin (a pipe, a file, a terminal or /dev/null alike).

    A thread reads, because the event loop cannot watch regular files or /dev/null.
    """
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes] = asyncio.Queue()

    def reader() -> None:
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
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, line + b"\n" if line else b"")
                except RuntimeError:  # the loop has closed: the node is gone
                    return
            if not chunk:
                return

    threading.Thread(target=reader, name="stdin-commands", daemon=True).start()
    while not done.is_set():
        line = await lines.get()
        if not line:
            return  # stdin closed: keep running until a signal or a "quit"
        if len(line) > MAX_COMMAND:
            node.events.put_nowait(ErrorEvent("bad_command", "command line too long"))
            continue
        await _one_line(node, line, done)


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
TYPED_HELP = (
    "commands: /hand /lower /invite NAME /yes /no /accept NAME /listener [NAME] /mute [NAME] "
    "/unmute /remove NAME /block NAME /cohost NAME /uncohost [NAME] /title TEXT /record on|off "
    "/end /react clap|heart|laugh|hundred|raised|thinking|fire|wave /leave /join ROOM "
    "/host TITLE /state /help /quit; anything else is sent as chat"
)


def typed_command(text: str) -> dict[str, Any]:
    """Turn a line typed at the terminal into a command object."""
    if not text.startswith("/"):
        return {"cmd": "chat", "text": text}
    word, _, rest = text[1:].partition(" ")
    rest = rest.strip()
    if word in ("quit", "leave", "state", "help"):
        return {"cmd": word}
    if word in WITH_ARGUMENT:
        return {"cmd": word, WITH_ARGUMENT[word]: rest}
    if word == "title":
        return {"cmd": "request", "action": "set_title", "text": rest}
    if word == "record":
        return {"cmd": "request", "action": "set_recording", "flag": rest == "on"}
    if word not in TYPED:
        raise BadCommand(TYPED_HELP)
    action, needs_target = TYPED[word]
    if needs_target and not rest:
        raise BadCommand(f"/{word} needs a member's name or id")
    return {"cmd": "request", "action": action} | ({"target": rest} if rest else {})


async def _one_line(node: Node, line: bytes, done: asyncio.Event) -> None:
    text = line.decode(errors="replace").strip()
    if not text:
        return
    try:
        command = json.loads(text) if text.startswith("{") else typed_command(text)
        if not isinstance(command, dict):
            raise BadCommand("a command is a JSON object")
        if command.get("cmd") == "quit":
            done.set()
            return
        await run_command(node, command)
    except json.JSONDecodeError as exc:
        node.events.put_nowait(ErrorEvent("bad_command", f"not JSON: {exc.msg}"))
    except BadCommand as exc:
        node.events.put_nowait(ErrorEvent("bad_command", str(exc)))
    except CommandError as exc:
        node.events.put_nowait(ErrorEvent("command_failed", str(exc)))


async def _print_events(node: Node, out: TextIO, render: Callable[[Event], str]) -> None:
    while True:
        event = await node.events.get()
        out.write(render(event) + "\n")
        out.flush()


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
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    render = as_json_line if headless else describe
    printer = asyncio.ensure_future(_print_events(node, sys.stdout, render))
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
                tasks.append(asyncio.ensure_future(_read_commands(node, done)))
            await stopping
        stopping.cancel()
    except CommandError as exc:
        node.events.put_nowait(ErrorEvent("command_failed", str(exc)))
        status = 1
    finally:
        await node.stop()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        while not node.events.empty():  # the last events (left, ended) still get printed
            sys.stdout.write(render(node.events.get_nowait()) + "\n")
        sys.stdout.flush()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return status
