"""Under CI a missing end-to-end dependency fails the run; elsewhere it skips."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
from tests.needs import unavailable

def test_probe():
    unavailable("no network namespaces here")
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parent.parent)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(probe)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_a_missing_dependency_skips_on_a_laptop(tmp_path: Path) -> None:
    result = _run(tmp_path, None)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout


def test_a_missing_dependency_fails_under_ci(tmp_path: Path) -> None:
    result = _run(tmp_path, "1")
    assert result.returncode == 1, result.stdout
    assert "CI must run this test, but no network namespaces here" in result.stdout
