"""What the benchmark scripts share: a process's CPU time and memory from /proc, and a headless
node in its own process whose events are read as they come (a full pipe would stall it)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Headless:
    """``p2pspaces start --headless`` on loopback; each event is timestamped (monotonic) as it
    arrives, and the output is read all the time."""

    def __init__(self, *args: str, log: Path | None = None, python: list[str] | None = None):
        self._log: IO[bytes] | None = log.open("wb") if log is not None else None
        argv = [*(python or [sys.executable]), "-m", "p2pspaces", "start", "--headless"]
        self.proc = subprocess.Popen(
            [*argv, "--interface", LOOPBACK, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
        )
        self.events: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put((time.monotonic(), json.loads(line)))

    def send(self, **command: Any) -> None:
        """Send one JSON command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def wait(self, name: str, within: float = 30.0, **match: Any) -> tuple[float, dict[str, Any]]:
        """The next ``name`` event whose fields match, with when it arrived."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                stamp, event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event["event"] == name and all(event.get(k) == v for k, v in match.items()):
                return stamp, event
        raise RuntimeError(f"no {name} event within {within:.0f} s")

    def wait_for(self, name: str, within: float = 30.0) -> dict[str, Any]:
        """The next ``name`` event."""
        return self.wait(name, within)[1]

    def cpu_seconds(self) -> float:
        """CPU seconds the node has used."""
        return cpu_seconds(self.proc.pid)

    def rss_mb(self) -> float:
        """The node's resident memory, in MB."""
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM (the node leaves cleanly) and wait."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()
