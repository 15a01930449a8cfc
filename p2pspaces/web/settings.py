"""Where and how much a node serves its room to browsers."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HTTP_PORT = 8480
DEFAULT_HTTPS_PORT = 8443
DEFAULT_MAX_GUESTS = 30


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Serving the room to browsers: ``mode`` auto (while hosting or co-hosting), on or off."""

    mode: str = "auto"
    http_port: int = DEFAULT_HTTP_PORT
    https_port: int = DEFAULT_HTTPS_PORT
    max_guests: int = DEFAULT_MAX_GUESTS
