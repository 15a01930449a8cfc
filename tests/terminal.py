"""A real terminal for tests: one tmux session on a tmux server of its own (its own socket, so
no other tmux session can disturb it), running a command line under bash.

After the command the terminal prints ``EXIT=<status>`` and the tty flags ``icanon`` and
``echo`` if they are set, so a test can see both that the program exited cleanly and that it
gave the terminal back in cooked mode.  bash, not sh: Ctrl+C signals the whole foreground group,
and sh would die with the program before it could report.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable

from .needs import unavailable


class Terminal:
    """``argv`` running in a ``width`` x ``height`` terminal."""

    def __init__(self, name: str, argv: list[str], width: int = 100, height: int = 30) -> None:
        if shutil.which("tmux") is None:
            unavailable("the terminal tests need tmux")
        self.name = f"{name}{time.monotonic_ns() % 10**8}"
        # One line, written at once: the status and the flags (printing them apart let a
        # reader catch EXIT= before the flags were on screen).
        script = shlex.join(argv) + "; status=$?; flags=$(stty -a | tr ' ' '\\n' | "
        script += "grep -x -e icanon -e echo | tr '\\n' ' '); "
        script += 'echo "EXIT=$status $flags"; sleep 60'
        size = ("-x", str(width), "-y", str(height))
        self._tmux("new-session", "-d", "-s", self.name, *size, "bash", "-c", script)

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.name, *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=check,
        )

    def keys(self, *keys: str) -> None:
        """Type keys (tmux names: Enter, C-c, ...)."""
        self._tmux("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        """What the terminal shows now, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-t", self.name, check=False).stdout

    def wait(self, done: Callable[[str], bool], within: float = 30) -> str:
        """The screen, once ``done(screen)`` holds."""
        deadline = time.monotonic() + within
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if done(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"the screen never showed what was expected:\n{screen}")

    def exited_cleanly(self) -> bool:
        """Whether the program exited with status 0 and left the tty in cooked mode."""
        words = self.wait(lambda s: "EXIT=" in s).split()
        return "EXIT=0" in words and "icanon" in words and "echo" in words

    def close(self) -> None:
        """Kill the terminal and its tmux server."""
        self._tmux("kill-server", check=False)
