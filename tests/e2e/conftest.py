"""End-to-end fixtures: a LAN of network namespaces (skipped only where they cannot be made,
and never under CI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2pspaces.testing.lan import Lan, netns_unavailable

from ..needs import unavailable


def _lan(size: int) -> Iterator[Lan]:
    reason = netns_unavailable()
    if reason is not None:
        unavailable(f"end-to-end tests need network namespaces: {reason}")
    with Lan(size) as lan:
        yield lan


@pytest.fixture
def lan3() -> Iterator[Lan]:
    yield from _lan(3)


@pytest.fixture
def lan4() -> Iterator[Lan]:
    yield from _lan(4)


@pytest.fixture
def lan7() -> Iterator[Lan]:
    yield from _lan(7)
