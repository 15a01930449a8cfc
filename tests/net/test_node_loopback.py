"""Three nodes in one process on loopback: one hosts, two discover and join."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2pspaces.core.events import (
    ChatReceived,
    Ended,
    ErrorEvent,
    Joined,
    Left,
    RoomFound,
    RoomLost,
    StateChanged,
)
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import Role
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node, NodeConfig

from .conftest import LOOPBACK, next_event


async def _settled(nodes: list[Node], seq: int) -> list[StateChanged]:
    return [await next_event(n, StateChanged, lambda e: e.state.seq >= seq) for n in nodes]


async def test_three_nodes_discover_join_and_agree(make_node: Callable[..., Any]) -> None:
    host, ann, bob = await make_node("Hana"), await make_node("Ann"), await make_node("Bob")
    room_id = await host.host("Loopback lunch")
    for member in (ann, bob):
        found = await next_event(member, RoomFound, lambda e: e.room == room_id)
        assert found.title == "Loopback lunch"
        assert found.host_name == "Hana"
    await ann.join("Loopback lunch")
    await bob.join(room_id.hex()[:8])
    assert (await next_event(bob, Joined)).room == room_id
    states = await _settled([host, ann, bob], 2)
    hashes = {s.as_json()["hash"] for s in states}
    assert len(hashes) == 1
    assert {(s.state.epoch, s.state.seq) for s in states} == {(0, 2)}
    assert {m.name for m in host.replica.state.members.values()} == {"Hana", "Ann", "Bob"}


async def test_requests_chat_and_refusals_travel_through_the_authority(
    make_node: Callable[..., Any],
) -> None:
    host, ann = await make_node("Hana"), await make_node("Ann")
    room_id = await host.host("Rules")
    await ann.join(room_id.hex())
    await ann.request(Action(ActionKind.RAISE_HAND))
    await _settled([host, ann], 2)
    # A listener may not mute the host: refused with a reason, nothing changes.
    req = await ann.request(Action(ActionKind.MUTE, host.node_id))
    error = await next_event(ann, ErrorEvent)
    assert (error.code, error.req_id) == ("refused", req)
    assert "only the host or a co-host" in error.reason
    await host.request(Action(ActionKind.ACCEPT_HAND, ann.node_id))
    (member_view,) = await _settled([ann], 3)
    assert member_view.state.members[ann.node_id].role == Role.SPEAKER
    await ann.chat("hello room")
    for node in (host, ann):
        chat = await next_event(node, ChatReceived)
        assert (chat.name, chat.text) == ("Ann", "hello room")


async def test_leaving_and_ending(make_node: Callable[..., Any]) -> None:
    host, ann = await make_node("Hana"), await make_node("Ann")
    room_id = await host.host("Short one")
    await ann.join(room_id.hex())
    await ann.leave()
    (after,) = await _settled([host], 2)
    assert ann.node_id not in after.state.members
    assert await next_event(ann, Left)
    await ann.join(room_id.hex())
    await host.leave()  # no co-host: the room ends for everyone
    ended = await next_event(ann, Ended)
    assert ended.room == room_id
    lost = await next_event(ann, RoomLost, lambda e: e.room == room_id)
    assert lost.room == room_id


async def test_a_front_end_that_stops_reading_events_does_not_stop_the_room() -> None:
    """A node whose front end hangs keeps a bounded event queue (the oldest go, counted) and
    keeps serving: the room still moves, and once reading again the front end sees it now."""
    quiet = Node(Identity.generate(), NodeConfig("Hana", interface=LOOPBACK, events_max=4))
    ann = Node(Identity.generate(), NodeConfig("Ann", interface=LOOPBACK))
    async with quiet, ann:
        room_id = await quiet.host("Nobody reads")
        await ann.join(room_id.hex())
        for n in range(5):  # each line and reaction is an event at the host; nobody reads
            await ann.chat(f"line {n}")
        for _ in range(8):
            await ann.react("clap")
        await ann.request(Action(ActionKind.RAISE_HAND))
        await next_event(ann, StateChanged, lambda e: e.state.members[ann.node_id].hand)
        assert quiet.events.qsize() <= 4
        assert quiet.feed.dropped > 0
        seen = await next_event(quiet, StateChanged, within=5)  # the newest were kept
        assert seen.state.members[ann.node_id].hand
