"""Defects a new user hit, each pinned by a test that failed before its fix (issue 8)."""

from __future__ import annotations

import dataclasses
import errno
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pspaces.app.console import BadCommand, resolve_member, typed_command
from p2pspaces.app.words import Narrator
from p2pspaces.core.events import ErrorEvent, RoomFound, Speaking, StateChanged
from p2pspaces.core.identity import short_fingerprint
from p2pspaces.node.dialer import why

from .session.kit import FakeNet


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "p2pspaces",
            "start",
            "--interface",
            "127.0.0.1",
            "--home",
            str(tmp_path / "home"),
            "--input",
            "none",
            *args,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_while_waiting_for_a_room_leaves_at_once(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--output", "none", "--join", "nosuchroom")
    time.sleep(2.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert time.monotonic() - sent < 1.5


def test_an_output_file_that_is_a_folder_fails_without_a_traceback(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--output", f"file:{tmp_path}")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "cannot write" in err
    assert "Traceback" not in err and "Exception ignored" not in err


def test_help_is_help_not_an_error(tmp_path: Path) -> None:
    assert typed_command("/help") == {"cmd": "help"}
    proc = _start(tmp_path, "--output", "none", "--name", "Hana", "--host", "Helpful")
    assert proc.stdin is not None
    time.sleep(1.5)
    proc.stdin.write("/help\n/quit\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=20)
    assert "commands: /hand" in out
    assert "error (bad_command): commands" not in out


def test_two_members_with_one_name_are_told_apart_by_fingerprint() -> None:
    net = FakeNet()
    hana, ann1, ann2 = net.add("Hana"), net.add("Ann"), net.add("Ann")
    net.room(hana, ann1, ann2)
    state = hana.state
    assert state is not None
    with pytest.raises(BadCommand) as refused:
        resolve_member(state, "Ann")
    message = str(refused.value)
    assert "2 members are named 'Ann'" in message
    assert short_fingerprint(ann1.me) in message and short_fingerprint(ann2.me) in message
    assert resolve_member(state, short_fingerprint(ann2.me)) == ann2.me
    assert resolve_member(state, short_fingerprint(ann1.me).lower()) == ann1.me


def test_the_node_outlives_its_room_and_can_host_again(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--output", "none", "--headless", "--name", "Hana", "--host", "One")
    assert proc.stdin is not None and proc.stdout is not None
    time.sleep(1.5)
    for command in ({"cmd": "request", "action": "end"}, {"cmd": "host", "title": "Two"}):
        proc.stdin.write(json.dumps(command) + "\n")
        proc.stdin.flush()
        time.sleep(0.8)
    assert proc.poll() is None, "the node exited when its room ended"
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "ended" in names
    assert [e["title"] for e in events if e["event"] == "joined"] == ["One", "Two"]


def test_a_failed_dial_is_said_in_words_not_as_a_python_tuple() -> None:
    # What asyncio raises when a host does not answer: errno and a message with a tuple in it.
    failed = OSError(errno.EHOSTUNREACH, "Connect call failed ('10.91.0.99', 41234)")
    assert why(failed) == "no route to host"


def test_a_reason_that_is_a_sentence_is_not_given_a_second_full_stop() -> None:
    reason = "2 Spaces are called 'Demo': … Join one by its room id (or a unique prefix of it)."
    [line] = Narrator(b"k" * 32).tell(ErrorEvent("command_failed", reason))
    assert line.text.endswith("prefix of it).") and not line.text.endswith("..")


def test_plain_mode_in_a_room_does_not_repeat_the_rooms_own_lobby_changes() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    state = ann.state
    assert state is not None
    narrator = Narrator(ann.me)
    narrator.tell(StateChanged(state))
    ours = RoomFound(state.room_id, state.title, hana.me, "Hana", 1, 1, changed=True)
    other = RoomFound(b"o" * 32, "Other", b"k" * 32, "Kim", 1, 0)
    assert narrator.tell(ours) == []  # said once already, as "Ann joined"
    assert narrator.tell(dataclasses.replace(other, changed=True)) == []
    [found] = narrator.tell(other)
    assert found.text.startswith("Space found: 'Other'")


def test_plain_mode_says_who_is_speaking_when_the_voice_changes() -> None:
    room, ann, bob, me = b"r" * 32, b"a" * 32, b"b" * 32, b"m" * 32
    narrator = Narrator(me)

    def said(member: bytes, name: str) -> list[str]:
        return [line.text for line in narrator.tell(Speaking(room, member, name, -20.0))]

    assert said(ann, "Ann") == ["Ann is speaking."]
    assert said(ann, "Ann") == []  # a pause and on: not again
    assert said(bob, "Bob") == ["Bob is speaking."]
    assert said(me, "Me") == []
    assert Narrator(me, keys=True).tell(Speaking(room, ann, "Ann", -20.0)) == []  # the app: a dot
