"""Defects of the live node a new user hit (issue 8), on loopback with real zeroconf and aiortc."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from p2pspaces.core import wire
from p2pspaces.core.events import AuthorityChanged, ErrorEvent, Event, Left, RoomLost, StateChanged
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

from .conftest import LOOPBACK, next_event


async def _drain(node: Node, seconds: float) -> list[Event]:
    seen: list[Event] = []
    end = asyncio.get_running_loop().time() + seconds
    while (left := end - asyncio.get_running_loop().time()) > 0:
        try:
            async with asyncio.timeout(left):
                seen.append(await node.events.get())
        except TimeoutError:
            break
    return seen


async def test_a_handover_does_not_report_the_room_lost_to_its_new_host(
    make_node: Callable[..., Any],
) -> None:
    hana, cody, ann = await make_node("Hana"), await make_node("Cody"), await make_node("Ann")
    room_id = await hana.host("Hand it on")
    await cody.join(room_id.hex())
    await ann.join(room_id.hex())
    await hana.request(Action(ActionKind.ADD_COHOST, cody.node_id))
    await next_event(cody, StateChanged, lambda e: cody.node_id in e.state.cohosts)
    await hana.leave()
    await next_event(cody, AuthorityChanged, lambda e: e.authority == cody.node_id)
    after = await _drain(cody, 3.0)
    assert [e for e in after if isinstance(e, RoomLost)] == []
    assert room_id in ann.rooms  # the others see it advertised by its new host
    assert ann.rooms[room_id].advert.node_id == cody.node_id


async def test_a_home_where_hosting_cannot_be_noted_says_so_once(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home folder should be")
    node = Node(
        Identity.generate(), NodeConfig("Hana", interface=LOOPBACK, state_dir=blocker / "home")
    )
    await node.start()
    try:
        room_id = await node.host("Unsaved")
        warning = await next_event(node, ErrorEvent, lambda e: e.code == "hosting_not_saved")
        assert "will not reclaim the room" in warning.reason
        await node.leave()
        await next_event(node, Left)
        await node.host("Unsaved again")
        later = await _drain(node, 0.5)
        assert not [e for e in later if isinstance(e, ErrorEvent)]
        assert room_id != node.replica.room_id  # type: ignore[union-attr]
    finally:
        await node.stop()


async def test_a_flooder_is_told_it_was_dropped_and_for_how_long(
    make_node: Callable[..., Any],
) -> None:
    hana, mal = await make_node("Hana"), await make_node("Mallory")
    room_id = await hana.host("No floods")
    await mal.join(room_id.hex())
    state = hana.replica.state  # type: ignore[union-attr]
    beat = wire.seal_bytes(mal.identity, wire.Heartbeat(room_id, state.epoch, state.seq, b"h" * 32))
    for _ in range(2000):
        mal.mesh.send(hana.node_id, beat)
    left = await next_event(mal, Left)
    assert "flooding" in left.reason and "30 s" in left.reason
    assert mal.replica is None
