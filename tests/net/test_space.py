"""The Space between live nodes: reactions, chat limits, recording, and refusals with reasons."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pspaces.core import wire
from p2pspaces.core.errors import AlreadyTold, CommandError
from p2pspaces.core.events import (
    ChatReceived,
    ErrorEvent,
    Left,
    ReactionReceived,
    Recording,
    StateChanged,
)
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import Role
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

from .conftest import LOOPBACK, drain, next_event


async def _room(make_node: Callable[..., Any], *names: str) -> list[Node]:
    nodes = [await make_node(name) for name in names]
    room = await nodes[0].host("Space")
    for node in nodes[1:]:
        await node.join(room.hex())
    await next_event(nodes[0], StateChanged, lambda e: len(e.state.members) == len(nodes))
    return nodes


async def test_reactions_reach_everyone_with_the_authors_name(
    make_node: Callable[..., Any],
) -> None:
    host, ann, bob = await _room(make_node, "Hana", "Ann", "Bob")
    await ann.react("clap")
    await bob.react("🔥")
    for node in (host, ann, bob):
        first = await next_event(node, ReactionReceived)
        second = await next_event(node, ReactionReceived)
        assert {(first.name, first.emoji), (second.name, second.emoji)} == {
            ("Ann", "👏"),
            ("Bob", "🔥"),
        }
    with pytest.raises(CommandError, match="not one of the reactions"):
        await ann.react("banana")


async def test_chat_over_the_rate_limit_is_refused_with_a_reason(
    make_node: Callable[..., Any],
) -> None:
    host, ann = await _room(make_node, "Hana", "Ann")
    for index in range(8):
        await ann.chat(f"line {index}")
    refused = await next_event(ann, ErrorEvent, lambda e: e.code == "rate_limited")
    assert "too fast" in refused.reason
    lines = [await next_event(host, ChatReceived) for _ in range(5)]
    assert [line.text for line in lines] == [f"line {i}" for i in range(5)]  # in order


async def test_a_removed_member_cannot_chat_and_a_blocked_key_cannot_return(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    host, ann, bob = await _room(make_node, "Hana", "Ann", "Bob")
    await host.request(Action(ActionKind.REMOVE, ann.node_id))
    left = await next_event(ann, Left)
    assert left.reason == "removed from the room"
    with pytest.raises(CommandError, match="not in a room"):
        await ann.chat("let me back")
    # Bob's client keeps its link and sends anyway once removed: the authority refuses him.
    await host.request(Action(ActionKind.BLOCK, bob.node_id))
    assert (await next_event(bob, Left)).reason == "blocked from the room"
    # The same key on a new node (another port) cannot come back.
    again = Node(bob.identity, NodeConfig("Bob again", LOOPBACK))
    told: list[ErrorEvent] = []
    again.feed.watchers.append(lambda e: told.append(e) if isinstance(e, ErrorEvent) else None)
    await again.start()
    try:
        # Said once, by the session's event: the front ends add nothing for an AlreadyTold.
        with pytest.raises(AlreadyTold, match="refused by the peer: blocked from this room"):
            await again.join(host.replica.room_id.hex(), wait=5)
        assert [e.code for e in told] == ["join_failed"], told
    finally:
        await again.stop()
    assert bob.node_id in host.replica.state.blocked
    # Ann, removed but not blocked, may rejoin as a listener.
    await ann.join(host.replica.room_id.hex())
    assert host.replica.state.members[ann.node_id].role == Role.LISTENER


async def test_refusals_come_back_with_reasons_and_change_nothing(
    make_node: Callable[..., Any],
) -> None:
    host, cora, lee = await _room(make_node, "Hana", "Cora", "Lee")
    await host.request(Action(ActionKind.INVITE_SPEAKER, cora.node_id))
    await next_event(cora, StateChanged, lambda e: e.state.members[cora.node_id].invited)
    await cora.request(Action(ActionKind.ACCEPT_INVITE))
    await next_event(
        host, StateChanged, lambda e: e.state.members[cora.node_id].role == Role.SPEAKER
    )
    await host.request(Action(ActionKind.ADD_COHOST, cora.node_id))
    await next_event(cora, StateChanged, lambda e: cora.node_id in e.state.cohosts)
    before = host.replica.hash()
    cases = [
        (lee, Action(ActionKind.MUTE, cora.node_id), "only the host or a co-host"),
        (lee, Action(ActionKind.REMOVE, cora.node_id), "only the host or a co-host"),
        (cora, Action(ActionKind.MUTE, host.node_id), "equal or higher role"),
        (cora, Action(ActionKind.ADD_COHOST, lee.node_id), "only the host"),
        (cora, Action(ActionKind.END), "only the host"),
    ]
    for node, action, reason in cases:
        req = await node.request(action)
        error = await next_event(node, ErrorEvent, lambda e, r=req: e.req_id == r)
        assert error.code == "refused" and reason in error.reason
    assert host.replica.hash() == before


async def test_the_host_records_the_room_while_the_flag_is_on(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    host = Node(Identity.generate(), NodeConfig("Hana", LOOPBACK, recordings=tmp_path))
    await host.start()
    try:
        room = await host.host("Recorded")
        ann = await make_node("Ann")
        await ann.join(room.hex())
        await host.request(Action(ActionKind.SET_RECORDING, flag=True))
        started = await next_event(host, Recording)
        flag = await next_event(ann, StateChanged, lambda e: e.state.recording)
        assert flag.state.recording and started.on
        await asyncio.sleep(1.0)
        await host.request(Action(ActionKind.SET_RECORDING, flag=False))
        stopped = await next_event(host, Recording, lambda e: not e.on)
    finally:
        await host.stop()
    assert stopped.path == started.path
    with wave.open(stopped.path) as written:
        assert written.getframerate() == 48_000
        assert 0.8 < written.getnframes() / 48_000 < 2.0


def test_reactions_are_a_fixed_set() -> None:
    assert {e.name.lower() for e in wire.Emoji} >= {"clap", "heart", "fire"}


async def test_a_host_remembers_its_room_until_it_ends(tmp_path: Path) -> None:
    host = Node(Identity.generate(), NodeConfig("Hana", LOOPBACK, state_dir=tmp_path))
    await host.start()
    try:
        room = await host.host("Remembered")
        saved = (tmp_path / "hosting.json").read_text()
        assert room.hex() in saved and "Remembered" in saved
        # Renamed: the note follows, so `--host <the current title>` after a crash reclaims.
        await host.request(Action(ActionKind.SET_TITLE, text="Renamed"))
        await next_event(host, StateChanged, lambda e: e.state.title == "Renamed")
        assert host.hosted.room_titled("Renamed") == room.hex()
        await host.leave()  # no co-host: the room ends, and is forgotten
        assert not (tmp_path / "hosting.json").exists()
    finally:
        await host.stop()


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
        later = await drain(node, 0.5)
        assert not [e for e in later if isinstance(e, ErrorEvent)]
        assert room_id != node.replica.room_id  # type: ignore[union-attr]
    finally:
        await node.stop()
