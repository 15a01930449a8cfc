"""Where and how much a node serves its room to browsers."""

from __future__ import annotations

from dataclasses import dataclass

from p2pspaces.core.settings import Switch

DEFAULT_HTTP_PORT = 8480
DEFAULT_HTTPS_PORT = 8443
DEFAULT_MAX_GUESTS = 30
DEFAULT_GRACE_S = 20.0
"""A guest whose page went away keeps its place this long: a reload, or the move from the
plain page to the secure one, must not cost a raised hand or the stage."""


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Serving the room to browsers: ``mode`` auto (while hosting or co-hosting), on or off."""

    mode: Switch = Switch.AUTO
    http_port: int = DEFAULT_HTTP_PORT
    https_port: int = DEFAULT_HTTPS_PORT
    max_guests: int = DEFAULT_MAX_GUESTS
    grace_s: float = DEFAULT_GRACE_S
