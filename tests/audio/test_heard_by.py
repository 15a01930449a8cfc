"""Heard by, through real nodes: a speaker learns from its listeners' own reports who hears it
and who does not (issue 21 item 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2pspaces.audio.devices import ToneSource
from p2pspaces.core.events import HeardBy, Joined
from p2pspaces.node.config import Faults

from ..net.conftest import next_event


async def test_a_speaker_sees_who_hears_it_and_is_told_who_does_not(
    nodes: Callable[..., Any],
) -> None:
    hana = await nodes("Hana", source=ToneSource(440))  # the host speaks from the start
    ann = await nodes("Ann")
    bob = await nodes("Bob", faults=Faults(drop=1.0))  # Bob's node plays nothing it receives
    room_id = await hana.host("Can you hear me")
    for listener in (ann, bob):
        await listener.join(room_id.hex())
        await next_event(listener, Joined)
    told = await next_event(hana, HeardBy, lambda e: e.of == 2, within=20)
    assert (told.heard, told.deaf) == (1, ("Bob",))
    assert told.quiet == ()
