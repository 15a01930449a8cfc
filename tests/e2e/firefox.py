"""Firefox for the browser tests: :mod:`p2pspaces.testing.firefox`, failing or skipping as the
other needs do when it cannot run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from p2pspaces.testing.firefox import Firefox, Unavailable
from p2pspaces.testing.firefox import firefox as _firefox

from ..needs import unavailable


@contextmanager
def firefox(namespace: str, folder: Path, sound: dict[str, str] | None = None) -> Iterator[Firefox]:
    """A Firefox browser in ``namespace`` (with a sound server's devices, if given)."""
    try:
        with _firefox(namespace, folder, sound) as browser:
            yield browser
    except Unavailable as exc:
        unavailable(str(exc))
