"""End-to-end fixtures: a LAN of network namespaces (skipped only where they cannot be made)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .lan import Lan, netns_unavailable


@pytest.fixture
def lan3() -> Iterator[Lan]:
    reason = netns_unavailable()
    if reason is not None:
        pytest.skip(f"end-to-end tests need network namespaces: {reason}")
    with Lan(3) as lan:
        yield lan
