"""A process held to a small share of one CPU core, for overload tests and benchmarks.

The kernel's CFS bandwidth control does it: a control group whose quota is ``percent`` of each
100 ms period; a process in it runs at most that long per period, then waits for the next (it
is starved in slices, as a laptop short of CPU is, not slowed evenly).  cgroup v2 (``cpu.max``)
where the cpu controller is enabled, else cgroup v1's cpu hierarchy (``cpu.cfs_quota_us``).
Needs root; :func:`cpu_share_unavailable` says why it cannot be used here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Self

PERIOD_US = 100_000
V2 = Path("/sys/fs/cgroup")
V1 = Path("/sys/fs/cgroup/cpu")


def _hierarchy() -> tuple[Path, str] | None:
    """Where groups are made, and which version: v2 if its cpu controller is on."""
    controllers = V2 / "cgroup.subtree_control"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return V2, "v2"
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, "v1"
    return None


def cpu_share_unavailable() -> str | None:
    """Why a process cannot be held to a CPU share here, or None if it can."""
    if _hierarchy() is None:
        return "no cgroup cpu controller (cgroup v2 cpu.max or v1 cpu.cfs_quota_us)"
    if os.geteuid() != 0:
        return "holding a process to a CPU share needs root (cgroups)"
    return None


class CpuShare:
    """``with CpuShare(10) as share: share.add(pid)``: the processes added run on at most 10%
    of one core until the block ends (then they are let go and the group removed)."""

    def __init__(self, percent: float) -> None:
        if not 0 < percent <= 100:
            raise ValueError("a CPU share is a percentage of one core, above 0 and at most 100")
        found = _hierarchy()
        if found is None:
            raise RuntimeError(cpu_share_unavailable())
        self._root, self._version = found
        self.percent = percent
        self.path = self._root / f"p2pspaces-{secrets.token_hex(4)}"

    def __enter__(self) -> Self:
        self.path.mkdir()
        quota = max(1000, round(PERIOD_US * self.percent / 100))
        if self._version == "v2":
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        return self

    def add(self, pid: int) -> None:
        """Hold ``pid`` (every thread of it) to the share."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # it may have ended meanwhile
                    (self._root / "cgroup.procs").write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()
