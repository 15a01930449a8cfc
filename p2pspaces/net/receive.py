"""Our own receive path for WebRTC audio: the one place that reaches into aiortc's privates.

aiortc's own jitter buffer holds 80 ms and has no loss handling (see
:mod:`p2pspaces.audio.jitter`), and it offers no public hook for received RTP.  Its transport
hands each RTP packet to the receiver's ``_handle_rtp_packet``, looked up on the instance, so
that is where ours goes in.  If aiortc renames it, :func:`take_rtp` fails loudly at once (and
``tests/audio/test_units.py`` shows packets still arrive through it), never silently deaf.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCRtpReceiver

RtpHandler = Callable[..., Awaitable[None]]
"""Called as ``handler(packet, arrival_time_ms)`` for each RTP packet (aiortc's
``RtpPacket``: ``sequence_number``, ``timestamp``, ``payload``)."""

_HOOK = "_handle_rtp_packet"


def take_rtp(receiver: RTCRtpReceiver, handler: RtpHandler) -> None:
    """Send every RTP packet ``receiver`` gets to ``handler`` instead of aiortc's decoder."""
    if not callable(getattr(RTCRtpReceiver, _HOOK, None)):
        raise RuntimeError(
            f"this aiortc has no RTCRtpReceiver.{_HOOK}: p2pspaces cannot receive audio with it"
        )
    hooked: Any = receiver
    setattr(hooked, _HOOK, handler)
