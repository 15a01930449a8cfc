"""What the app's screens ask of the app (a protocol, so screens need not import the app)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from textual.app import App

from p2pspaces.node import Node


class Spaces(Protocol):
    """The app, as its screens see it."""

    node: Node

    def join_room(self, ref: str) -> None:
        """Join a Space by id, title or address (asks which if a title is ambiguous)."""

    def ask_host(self) -> None:
        """Ask for a title and host a Space."""

    def ask_address(self) -> None:
        """Ask for an address and join the Space there."""

    def do(self, work: Coroutine[Any, Any, object], done: str | None = None) -> None:
        """Run a node command; a refusal becomes a notice, never a traceback."""


def spaces(app: App[Any]) -> Spaces:
    """The running app as :class:`Spaces`."""
    return app  # type: ignore[return-value]
