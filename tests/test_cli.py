"""The `p2pspaces` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pspaces.app.console import typed_command
from p2pspaces.testing.command import start_argv


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pspaces", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_id_prints_the_same_fingerprint_every_time(tmp_path: Path) -> None:
    first = run("id", "--home", str(tmp_path))
    again = run("id", "--home", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"([A-Z2-7]{4}-){12}[A-Z2-7]{4}\n", first.stdout)
    assert again.stdout == first.stdout
    short = run("id", "--home", str(tmp_path), "--short")
    assert first.stdout.startswith(short.stdout.strip())


def test_id_uses_the_home_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "P2PSPACES_HOME": str(tmp_path / "envhome")}
    result = run("id", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "envhome" / "identity.key").exists()


def test_id_with_a_corrupt_key_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "identity.key").write_text("garbage")
    result = run("id", "--home", str(tmp_path))
    assert result.returncode == 1
    assert f"the key file {tmp_path / 'identity.key'} is corrupt" in result.stderr
    assert (tmp_path / "identity.key").read_text() == "garbage"


def test_start_with_an_address_this_host_lacks_fails_clearly(tmp_path: Path) -> None:
    result = run("start", "--headless", "--home", str(tmp_path), "--interface", "10.254.254.254")
    assert result.returncode == 1
    assert "no network interface has the address 10.254.254.254" in result.stderr


def test_start_refuses_host_and_join_together(tmp_path: Path) -> None:
    result = run("start", "--home", str(tmp_path), "--host", "A", "--join", "B")
    assert result.returncode == 2
    assert "--host and --join cannot be used together" in result.stderr


@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("300.1.2.3:4000", "300.1.2.3 is not an IPv4 address"),
        ("10.0.0.1:99999", "the port must be 1 to 65535"),
    ],
)
def test_join_by_a_malformed_address_is_refused_at_once(tmp_path: Path, ref: str, why: str) -> None:
    """Not taken as a title and searched for: said at once, in words."""
    result = run("start", "--home", str(tmp_path), "--join", ref)
    assert result.returncode == 2
    assert f"{ref} is not a valid address: {why}" in result.stderr


def test_rooms_says_when_there_are_none() -> None:
    result = run("rooms", "--interface", "127.0.0.1", "--wait", "0.3")
    assert result.returncode == 0
    assert result.stdout.startswith("No Spaces found in 0.3 s.") or "hosted by" in result.stdout


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        start_argv("--input", "none", *args, home=tmp_path / "home"),
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
