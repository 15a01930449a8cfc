"""``--plain`` at a real terminal (tmux): sentences, never JSON, and the line being typed stays
intact below the output; Ctrl+C leaves and gives the shell its terminal back."""

from __future__ import annotations

import sys
from pathlib import Path

from p2pspaces.testing.lan import NodeProcess

from ..terminal import Terminal


def _hana_hosting(tmp_path: Path) -> Terminal:
    argv = [sys.executable, "-m", "p2pspaces", "start", "--plain", "--interface", "127.0.0.1"]
    argv += ["--name", "Hana", "--home", str(tmp_path / "hana"), "--input", "none"]
    argv += ["--output", "none", "--host", "Plain talk"]
    return Terminal("p2pplain", argv, width=120)


def _ann_joins(tmp_path: Path, screen: str) -> NodeProcess:
    address = screen.split("--join", 1)[1].split(maxsplit=1)[0]
    ann = NodeProcess(
        [sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", "127.0.0.1",
         "--name", "Ann", "--home", str(tmp_path / "ann"), "--input", "none", "--output",
         "none", "--join", address],
        tmp_path / "ann.log",
    )  # fmt: skip
    ann.wait_for("joined")
    return ann


def test_plain_mode_keeps_the_typed_line_below_the_output(tmp_path: Path) -> None:
    terminal = _hana_hosting(tmp_path)
    ann = None
    try:
        # Typed once start-up has finished printing (the phones' QR code comes last) and the
        # prompt waits, as a person would: keys sent before the prompt are echoed by the
        # terminal itself, and shifted when the prompt is drawn over them.
        screen = terminal.wait(lambda s: "join with: p2pspaces start --join" in s)
        web_said = ("SHA-256 fingerprint", "Phones cannot join")
        terminal.wait(lambda s: any(w in s for w in web_said) and s.rstrip().endswith(">"))
        terminal.keys("half a thou")
        terminal.wait(lambda s: "> half a thou" in s)
        ann = _ann_joins(tmp_path, screen)
        ann.send(cmd="chat", text="hi Hana")
        screen = terminal.wait(lambda s: "Ann: hi Hana" in s)
        lines = [line for line in screen.splitlines() if line.strip()]
        assert lines[-1] == "> half a thou", screen  # the typed line survived, at the bottom
        assert "Ann joined." in screen
        assert "{" not in screen, "plain mode never prints JSON"
        terminal.keys("C-c")  # Ctrl+C asks a sole host first, as /quit does
        terminal.wait(lambda s: "press Ctrl+C) again to end it" in s)
        terminal.keys("C-c")
        assert terminal.exited_cleanly(), terminal.screen()
    finally:
        terminal.close()
        if ann is not None:
            ann.stop()


def test_a_sole_host_is_asked_before_quit_ends_the_space_for_the_others(tmp_path: Path) -> None:
    terminal = _hana_hosting(tmp_path)
    ann = None
    try:
        ann = _ann_joins(tmp_path, terminal.wait(lambda s: "--join" in s))
        terminal.wait(lambda s: "Ann joined." in s)
        terminal.keys("/quit", "Enter")
        terminal.wait(lambda s: "quitting ends the Space for 1 other person" in s)
        terminal.keys("/quit", "Enter")
        assert terminal.exited_cleanly(), terminal.screen()
        ended = ann.wait_for("ended")
        assert ended["reason"] == "the host left and no co-host could take over"
    finally:
        terminal.close()
        if ann is not None:
            ann.stop()
