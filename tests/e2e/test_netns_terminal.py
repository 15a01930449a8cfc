"""``p2pspaces start`` in a real terminal (tmux) on one host of a LAN of namespaces: the lobby
shows a Space hosted on another host, Enter joins it, Ctrl+C leaves and restores the terminal."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..needs import unavailable
from .lan import Lan

pytestmark = pytest.mark.netns


SOCKET = f"p2ps-netns-{os.getpid()}"
"""A tmux server of the test's own, so no other tmux session can disturb it."""


def _tmux(*args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout


def _screen(session: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", SOCKET, "capture-pane", "-p", "-J", "-t", session],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout  # empty while the session is still starting


def _wait_screen(session: str, done: Callable[[str], bool], within: float = 30) -> str:
    deadline = time.monotonic() + within
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if done(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"the screen never showed what was expected:\n{screen}")


def test_the_app_in_a_real_terminal_joins_and_exits_cleanly(lan3: Lan, tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        unavailable("the terminal test needs tmux")
    hana = lan3.headless(0, tmp_path, "hana", "--host", "Terminal talk", "--input", "tone",
                         "--output", "none")  # fmt: skip
    session = f"p2ps{time.monotonic_ns() % 10**8}"
    argv = lan3.command(1, "start", "--name", "Ann", "--home", str(tmp_path / "ann"))
    app = shlex.join([*argv, "--input", "none", "--output", "none"])
    # After the app: its exit status, and whether the terminal is back in cooked mode.
    script = f"{app}; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo; sleep 60"
    _tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "bash", "-c", script)
    try:
        hana.wait_for("joined")
        screen = _wait_screen(session, lambda s: "Terminal talk" in s)
        assert "hana" in screen and "You: Ann" in screen
        _tmux("send-keys", "-t", session, "Enter")
        screen = _wait_screen(session, lambda s: "On stage" in s and "Audience (1)" in s)
        assert "Ann (you)" in screen and "hosted by hana" in screen
        hana.wait_for("state", lambda e: any(m["name"] == "Ann" for m in e["members"]))
        _tmux("send-keys", "-t", session, "C-c")
        screen = _wait_screen(session, lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen
        assert "icanon" in screen.split() and "echo" in screen.split()
        hana.wait_for("state", lambda e: all(m["name"] != "Ann" for m in e["members"]))
    finally:
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True, check=False)
        assert hana.stop() == 0
