"""Commands typed at the terminal (the readable, non-headless mode)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pspaces.app.console import BadCommand, resolve_member, typed_command
from p2pspaces.core.identity import short_fingerprint
from p2pspaces.testing.command import start_argv

from .session.kit import FakeNet


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("hello there", {"cmd": "chat", "text": "hello there"}),
        ("/hand", {"cmd": "request", "action": "raise_hand"}),
        ("/HAND", {"cmd": "request", "action": "raise_hand"}),
        ("/accept Ann", {"cmd": "request", "action": "accept_hand", "target": "Ann"}),
        ("/mute", {"cmd": "request", "action": "mute"}),
        ("/mute sam", {"cmd": "request", "action": "mute", "target": "sam"}),
        ("/title Friday talks", {"cmd": "request", "action": "set_title", "text": "Friday talks"}),
        ("/record on", {"cmd": "request", "action": "set_recording", "flag": True}),
        ("/join Friday", {"cmd": "join", "room": "Friday"}),
        ("/quit", {"cmd": "quit"}),
        ("/miccheck", {"cmd": "mic_check"}),
    ],
)
def test_typed_lines_become_commands(line: str, command: dict[str, object]) -> None:
    assert typed_command(line) == command


def test_unknown_or_incomplete_commands_explain_themselves() -> None:
    with pytest.raises(BadCommand, match=r"^Unknown command /dance\. Commands: /hand"):
        typed_command("/dance")
    with pytest.raises(BadCommand, match="/accept needs a member's name or id"):
        typed_command("/accept")


def test_a_host_at_a_terminal_chats_and_quits(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        start_argv("--host", "Terminal", home=tmp_path, name="Hana", silent=True),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    time.sleep(1.5)
    proc.stdin.write("good morning\n/dance\n/quit\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Type /help for commands" in out
    assert "You are hosting 'Terminal'" in out and "--join 127.0.0.1:" in out
    assert "Hana: good morning" in out
    assert "Unknown command /dance. Commands: /hand" in out
    assert "The Space ended: the host left and no co-host could take over." in out
    assert "{" not in out, "plain mode never prints JSON"


def test_plain_mode_speaks_in_sentences_once_and_logs_to_its_file(tmp_path: Path) -> None:
    """A warning reaches a plain-mode user once, as a sentence: no log line, no code."""
    (tmp_path / "hosting.json").mkdir()  # the note of the hosted room cannot be written
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "p2pspaces", "start", "--interface", "127.0.0.1"),
            *("--home", str(tmp_path), "--name", "Hana", "--host", "Plain"),
            *("--input", "none", "--output", "none", "--no-web"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    out, err = proc.communicate("/quit\n", timeout=20)
    assert proc.returncode == 0, err
    screen = out + err
    assert screen.count("will not reclaim the room") == 1, screen
    assert "Careful: cannot write" in out
    assert "(hosting_not_saved)" not in screen
    assert "WARNING" not in screen and "p2pspaces.node" not in screen
    assert "will not reclaim the room" in (tmp_path / "p2pspaces.log").read_text()


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
