"""``p2pspaces start`` in a real terminal (tmux) on one host of a LAN of namespaces: the lobby
shows a Space hosted on another host, Enter joins it, Ctrl+C leaves and restores the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pspaces.testing.lan import Lan

from ..terminal import Terminal

pytestmark = pytest.mark.netns


def test_the_app_in_a_real_terminal_joins_and_exits_cleanly(lan3: Lan, tmp_path: Path) -> None:
    hana = lan3.headless(0, tmp_path, "hana", "--host", "Terminal talk", "--input", "tone",
                         "--output", "none")  # fmt: skip
    argv = lan3.command(1, "start", "--name", "Ann", "--home", str(tmp_path / "ann"))
    terminal = Terminal("p2ps", [*argv, "--input", "none", "--output", "none"])
    try:
        hana.wait_for("joined")
        screen = terminal.wait(lambda s: "Terminal talk" in s)
        assert "hana" in screen and "You: Ann" in screen
        terminal.keys("Enter")
        screen = terminal.wait(lambda s: "On stage" in s and "Audience (1)" in s)
        assert "Ann (you)" in screen and "hosted by hana" in screen
        hana.wait_for("state", lambda e: any(m["name"] == "Ann" for m in e["members"]))
        terminal.keys("C-c")
        assert terminal.exited_cleanly(), terminal.screen()
        hana.wait_for("state", lambda e: all(m["name"] != "Ann" for m in e["members"]))
    finally:
        terminal.close()
        assert hana.stop() == 0
