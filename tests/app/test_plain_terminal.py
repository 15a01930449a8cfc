"""``--plain`` at a real terminal (tmux): sentences, never JSON, and the line being typed stays
intact below the output; Ctrl+C leaves and gives the shell its terminal back."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..e2e.lan import NodeProcess
from ..needs import unavailable


def _screen(session: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", session, "capture-pane", "-p", "-J", "-t", session],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout or done.stderr  # empty while the session is still starting


def _wait(session: str, done: Callable[[str], bool], within: float = 20) -> str:
    deadline = time.monotonic() + within
    screen = ""
    while time.monotonic() < deadline:
        screen = _screen(session)
        if done(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError(f"the screen never showed what was expected:\n{screen}")


def test_plain_mode_keeps_the_typed_line_below_the_output(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        unavailable("the terminal test needs tmux")
    session = f"p2pplain{time.monotonic_ns() % 10**8}"
    argv = [sys.executable, "-m", "p2pspaces", "start", "--plain", "--interface", "127.0.0.1"]
    argv += ["--name", "Hana", "--home", str(tmp_path / "hana"), "--input", "none"]
    argv += ["--output", "none", "--host", f"Plain {session}"]
    # bash, not sh: Ctrl+C signals the whole foreground group, and sh would die with it.
    script = shlex.join(argv) + "; echo EXIT=$?; stty -a | tr ' ' '\\n' | grep -x icanon; sleep 60"
    subprocess.run(
        [
            "tmux",
            "-L",
            session,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "30",
            "bash",
            "-c",
            script,
        ],
        check=True,
        capture_output=True,
    )
    ann = None
    try:
        screen = _wait(session, lambda s: "join with: p2pspaces start --join" in s)
        address = screen.split("--join", 1)[1].split()[0]
        subprocess.run(
            ["tmux", "-L", session, "send-keys", "-t", session, "half a thou"], check=True
        )
        _wait(session, lambda s: "> half a thou" in s)
        ann = NodeProcess(
            [sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", "127.0.0.1",
             "--name", "Ann", "--home", str(tmp_path / "ann"), "--input", "none", "--output",
             "none", "--join", address],
            tmp_path / "ann.log",
        )  # fmt: skip
        ann.wait_for("joined")
        ann.send(cmd="chat", text="hi Hana")
        screen = _wait(session, lambda s: "Ann: hi Hana" in s)
        lines = [line for line in screen.splitlines() if line.strip()]
        assert lines[-1] == "> half a thou", screen  # the typed line survived, at the bottom
        assert "Ann joined." in screen
        assert "{" not in screen, "plain mode never prints JSON"
        subprocess.run(["tmux", "-L", session, "send-keys", "-t", session, "C-c"], check=True)
        screen = _wait(session, lambda s: "EXIT=" in s)
        assert "EXIT=0" in screen and "icanon" in screen.split()
    finally:
        subprocess.run(["tmux", "-L", session, "kill-server"], capture_output=True, check=False)
        if ann is not None:
            ann.stop()
