"""What to do when a test's real dependency (network namespaces, PulseAudio) is missing.

On a developer's laptop the test is skipped with the reason.  When ``CI`` is set it fails
instead: CI installs everything, so a missing piece there is a broken set-up, and a run that
skipped the end-to-end layer must not pass (a run as a non-root user once skipped all seven
namespace tests and passed).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    """Skip (or, under CI, fail) the current test because ``reason``."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)
