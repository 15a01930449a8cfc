"""A LAN of Linux network namespaces joined by a bridge, and p2pspaces processes in it.

The bridge lives in a namespace of its own, so nothing touches the root namespace; every
namespace is deleted afterwards (which removes its veth ends too).
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from p2pspaces.testing.impair import Impairment

SUBNET = "10.77.0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None if they can."""
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"p2psprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot create a network namespace: {exc.stderr.decode().strip()}"
    _ip("netns", "del", probe)
    return None


class Lan:
    """``size`` hosts on one bridged subnet, host ``i`` at 10.77.0.(i+1)."""

    def __init__(self, size: int) -> None:
        tag = secrets.token_hex(3)
        self.bridge = f"p2psbr{tag}"
        self.hosts = [f"p2psh{i}{tag}" for i in range(size)]
        self.cables: list[subprocess.Popen[bytes]] = []

    def address(self, index: int) -> str:
        return f"{SUBNET}.{index + 1}"

    def __enter__(self) -> Lan:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        _ip("netns", "add", self.bridge)
        _ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge, "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts):
            _ip("netns", "add", host)
            _ip(
                "-n",
                self.bridge,
                "link",
                "add",
                f"v{index}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host,
            )
            _ip("-n", self.bridge, "link", "set", f"v{index}", "master", "br0", "up")
            _ip("-n", host, "addr", "add", f"{self.address(index)}/24", "dev", "eth0")
            _ip("-n", host, "link", "set", "eth0", "up")
            _ip("-n", host, "link", "set", "lo", "up")
            _ip("-n", host, "route", "add", "224.0.0.0/4", "dev", "eth0")

    def filter_multicast(self) -> None:
        """Make the bridge drop multicast between its ports, as many venue access points do
        (mDNS then finds nothing)."""
        for index in range(len(self.hosts)):
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.bridge,
                    "bridge",
                    "link",
                    "set",
                    "dev",
                    f"v{index}",
                    "mcast_flood",
                    "off",
                ],
                check=True,
                capture_output=True,
                timeout=20,
            )

    def impair(self, index: int, impairment: Impairment, seed: int | None = None) -> None:
        """Put an impairing cable (:mod:`p2pspaces.testing.impair`) between host ``index`` and the
        bridge: everything it sends and receives is lost, delayed, reordered or duplicated."""
        _ip("-n", self.bridge, "link", "set", f"v{index}", "nomaster")
        _ip(
            "-n",
            self.bridge,
            "link",
            "add",
            f"c{index}a",
            "type",
            "veth",
            "peer",
            "name",
            f"c{index}b",
        )
        _ip("-n", self.bridge, "link", "set", f"c{index}b", "master", "br0", "up")
        _ip("-n", self.bridge, "link", "set", f"c{index}a", "up")
        # Frames cross the cable whole and with their checksums filled in: no segmentation or
        # checksum offload on any host or on the cable's ends.
        for namespace, device in [
            *((host, "eth0") for host in self.hosts),
            *((self.bridge, name) for name in (f"v{index}", f"c{index}a", f"c{index}b")),
        ]:
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    namespace,
                    "ethtool",
                    "-K",
                    device,
                    "tx",
                    "off",
                    "tso",
                    "off",
                    "gso",
                    "off",
                    "gro",
                    "off",
                ],
                check=True,
                capture_output=True,
                timeout=20,
            )
        argv = [sys.executable, "-m", "p2pspaces.testing.impair", f"v{index}", f"c{index}a"]
        argv += impairment.argv() + (["--seed", str(seed)] if seed is not None else [])
        self.cables.append(
            subprocess.Popen(
                ["ip", "netns", "exec", self.bridge, *argv],
                cwd=Path(__file__).resolve().parent.parent.parent,
                stdout=subprocess.PIPE,
            )
        )

    def cable_counts(self) -> list[dict[str, int]]:
        """Stop the cables and return what each did."""
        counts = []
        for cable in self.cables:
            cable.terminate()
            out, _ = cable.communicate(timeout=10)
            counts.append(json.loads(out or b"{}"))
        self.cables.clear()
        return counts

    def set_link(self, index: int, up: bool) -> None:
        """Cut host ``index`` off the bridge, or bring it back."""
        _ip("-n", self.bridge, "link", "set", f"v{index}", "up" if up else "down")

    def close(self) -> None:
        for cable in self.cables:
            cable.kill()
            cable.wait(timeout=10)
        self.cables.clear()
        for namespace in [*self.hosts, self.bridge]:
            subprocess.run(
                ["ip", "netns", "del", namespace], capture_output=True, timeout=20, check=False
            )

    def headless(self, index: int, tmp_path: Path, name: str, *extra: str) -> NodeProcess:
        """``p2pspaces start --headless`` as ``name`` on host ``index`` (home and log in
        ``tmp_path``)."""
        argv = self.command(
            index, "start", "--headless", "--name", name, "--home", str(tmp_path / name), *extra
        )
        return NodeProcess(argv, tmp_path / f"{name}.log")

    def command(self, index: int, *args: str) -> list[str]:
        """A p2pspaces command line to run inside host ``index``."""
        return ["ip", "netns", "exec", self.hosts[index], sys.executable, "-m", "p2pspaces", *args]


class NodeProcess:
    """A ``p2pspaces start --headless`` process: send commands, wait for events."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._stderr = log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def wait_for(
        self,
        name: str,
        where: Callable[[dict[str, Any]], bool] = lambda e: True,
        within: float = 20,
    ) -> dict[str, Any]:
        """The next event called ``name`` that satisfies ``where``."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(event)
            if event["event"] == name and where(event):
                return event
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise AssertionError(f"no {name} event within {within} s; stderr:\n{tail}")

    def current_state(self, within: float = 10) -> dict[str, Any]:
        """Ask for the room state and return the answer (the last state event once the
        events have gone quiet for a moment)."""
        self.send(cmd="state")
        last = self.wait_for("state", within=within)
        while True:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                return last
            self.seen.append(event)
            if event["event"] == "state":
                last = event

    def stop(self, within: float = 15) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        self._reader.join(timeout=5)
        self._drain()
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            if stream is not None:
                stream.close()
        return status

    def _drain(self) -> None:
        while not self.events.empty():
            self.seen.append(self.events.get_nowait())
