"""Serving a node's room to browsers, as a service of the node (see :mod:`.gateway`).

Kept apart from the gateway so that the command line can set it up without loading aiohttp
before it is needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from p2pspaces.core.errors import ErrorCode
from p2pspaces.core.events import ErrorEvent, Event, StateChanged, WebReady
from p2pspaces.core.settings import Switch
from p2pspaces.web.settings import WebSettings

if TYPE_CHECKING:
    from p2pspaces.node import Node
    from p2pspaces.web.gateway import WebGateway


class WebService:
    """A node's web gateway as a service of the node: serving from the start (on), from the
    moment the node hosts or co-hosts (auto, the default), or never (off)."""

    def __init__(self, node: Node, folder: Path, settings: WebSettings) -> None:
        self.node = node
        self.folder = folder
        self.settings = settings
        self.gateway: WebGateway | None = None
        self._starting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """The node is up: serve now (on), or watch for hosting (auto)."""
        if self.settings.mode is Switch.ON:
            await self._serve()
        elif self.settings.mode is Switch.AUTO:
            self.node.feed.watchers.append(self._watch)

    def _watch(self, event: Event) -> None:
        if self.gateway is not None or self._starting is not None:
            return
        if isinstance(event, StateChanged) and self.node.node_id in event.state.authority_set():
            self._starting = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        from p2pspaces.web.gateway import WebGateway  # noqa: PLC0415 - aiohttp loads slowly

        settings = self.settings
        gateway = WebGateway(
            self.node,
            self.folder,
            http_port=settings.http_port,
            https_port=settings.https_port,
            max_guests=settings.max_guests,
            grace_s=settings.grace_s,
        )
        try:
            info = await gateway.start(self.node.bind_address)
        except OSError as exc:
            self.node.emit(
                ErrorEvent(ErrorCode.WEB_FAILED, f"cannot serve the room to browsers: {exc}")
            )
            return
        self.gateway = gateway
        self.node.emit(WebReady(info.http, info.https, info.cert_sha256))

    async def close(self) -> None:
        """The node is stopping."""
        if self._watch in self.node.feed.watchers:
            self.node.feed.watchers.remove(self._watch)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self.gateway is not None:
            await self.gateway.close()
            self.gateway = None


def web_of(node: Node) -> WebGateway | None:
    """The web gateway serving ``node``'s room, if it serves one now."""
    for service in node.services:
        if isinstance(service, WebService):
            return service.gateway
    return None
