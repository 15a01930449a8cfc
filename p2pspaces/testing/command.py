"""The ``p2pspaces start`` command line that tests and benchmarks run nodes with: one place, so
that a change of flags is made once."""

from __future__ import annotations

import sys
from pathlib import Path

LOOPBACK = "127.0.0.1"


def start_argv(
    *args: str,
    home: Path | str | None = None,
    name: str | None = None,
    interface: str = LOOPBACK,
    headless: bool = False,
    silent: bool = False,
) -> list[str]:
    """``python -m p2pspaces start`` on ``interface`` with ``args``; ``silent``: no audio
    devices (``--input none --output none``)."""
    argv = [sys.executable, "-m", "p2pspaces", "start", "--interface", interface]
    if headless:
        argv.append("--headless")
    if home is not None:
        argv += ["--home", str(home)]
    if name is not None:
        argv += ["--name", name]
    if silent:
        argv += ["--input", "none", "--output", "none"]
    return [*argv, *args]
