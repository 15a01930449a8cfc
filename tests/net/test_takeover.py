"""A room survives its host: a co-host takes over, members follow, speakers keep talking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.devices import ToneSource, WavSink, load_audio
from p2pspaces.audio.engine import FrameLog
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.core.events import (
    AuthorityChanged,
    Ended,
    Joined,
    Notice,
    RoomFound,
    RoomLost,
    Speaking,
    StateChanged,
)
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import Member, Role
from p2pspaces.core.settings import DEFAULT_TIMING, Timing
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

from .conftest import LOOPBACK, drain, next_event

_NOBODY = Member("nobody")


def _silence(node: Node) -> None:
    """Make a node vanish as a crashed laptop would: it sends nothing more, on any link."""
    for link in node.mesh.links.values():
        link.channel.send = lambda data: None  # type: ignore[method-assign]
    node.audio.may_send = lambda: False
    node.mesh.broadcast = lambda data: None  # type: ignore[method-assign]

    async def unplugged(host: str, port: int) -> None:
        raise OSError("unplugged")

    node.mesh.connect = unplugged  # type: ignore[method-assign,assignment]


def _longest_gap_ms(recording: np.ndarray, start: int) -> int:
    frames = recording[start : len(recording) // FRAME_SAMPLES * FRAME_SAMPLES]
    quiet = [rms_dbfs(f) < -50 for f in frames.reshape(-1, FRAME_SAMPLES)]
    longest = run = 0
    for is_quiet in quiet:
        run = run + 1 if is_quiet else 0
        longest = max(longest, run)
    return longest * 20


def _role(event: StateChanged, node: Node) -> Role | None:
    member = event.state.members.get(node.node_id)
    return member.role if member is not None else None


async def _promote(host: Node, member: Node, cohost: bool) -> None:
    await host.request(Action(ActionKind.INVITE_SPEAKER, member.node_id))
    await next_event(
        member, StateChanged, lambda e: e.state.members.get(member.node_id, _NOBODY).invited
    )
    await member.request(Action(ActionKind.ACCEPT_INVITE))
    await next_event(host, StateChanged, lambda e: _role(e, member) == Role.SPEAKER)
    if cohost:
        await host.request(Action(ActionKind.ADD_COHOST, member.node_id))
        await next_event(member, StateChanged, lambda e: member.node_id in e.state.cohosts)


async def test_a_cohost_takes_over_when_the_host_goes_silent(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    host, cora = await make_node("Hana"), await make_node("Cora")
    sam = Node(Identity.generate(), NodeConfig("Sam", LOOPBACK), source=ToneSource(500))
    log = FrameLog()  # its ticks count the frames written
    lee = Node(
        Identity.generate(),
        NodeConfig("Lee", LOOPBACK),
        sink=WavSink(tmp_path / "lee.wav"),
        frame_log=log,
    )
    for node in (sam, lee):
        await node.start()
    try:
        room = await host.host("Survives")
        for node in (cora, sam, lee):
            await node.join(room.hex())
        await _promote(host, cora, cohost=True)
        await _promote(host, sam, cohost=False)
        await next_event(lee, Speaking, lambda e: e.member == sam.node_id)
        await asyncio.sleep(1.0)
        before = lee.replica.state
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        frame_at_kill = len(log.ticks)
        _silence(host)
        changed = await next_event(lee, AuthorityChanged, within=10)
        took = loop.time() - killed_at
        assert changed.authority == cora.node_id and changed.epoch == 1
        assert took < 5.0
        assert cora.is_authority
        after = lee.replica.state
        # The room is the same room: roster, roles and blocks carried over.
        assert {k: m.role for k, m in after.members.items()} == {
            k: m.role for k, m in before.members.items()
        }
        # The new authority serves requests.
        await lee.request(Action(ActionKind.RAISE_HAND))
        raised = await next_event(
            lee, StateChanged, lambda e: e.state.members[lee.node_id].hand > 0
        )
        assert raised.state.authority == cora.node_id
        # ...and drops the silent host once its link times out.
        await next_event(
            lee, StateChanged, lambda e: host.node_id not in e.state.members, within=10
        )
        frame_at_end = len(log.ticks)
    finally:
        await lee.stop()
        await sam.stop()
    # Sam's voice, in Lee's recording from a second before the host died until the end: no gap.
    recording = load_audio(tmp_path / "lee.wav")
    window = recording[(frame_at_kill - 50) * FRAME_SAMPLES : frame_at_end * FRAME_SAMPLES]
    assert len(window) > 5 * 48000
    assert _longest_gap_ms(window, 0) <= 200


@pytest.mark.parametrize("restart", ["before the end", "after the end"])
async def test_listeners_of_a_dead_host_go_to_the_lobby_and_come_back_when_it_does(
    make_node: Callable[..., Any], restart: str
) -> None:
    """No co-host: the listener is not left waiting for ever; the host's laptop restarts and
    hosts again (a new Space: nobody kept the old one), and the listener is back in without
    typing anything, whether the host was back before or after it gave up."""
    timing = Timing(orphan_s=6.0)
    hana, ann = await make_node("Hana", timing), await make_node("Ann", timing)
    room = await hana.host("Fragile")
    await ann.join(room.hex())
    await next_event(hana, StateChanged, lambda e: ann.node_id in e.state.members)
    _silence(hana)
    await hana.stop()
    again = Node(
        hana.identity, NodeConfig("Hana", LOOPBACK, timing=timing)
    )  # the same laptop, restarted
    if restart == "after the end":
        ended = await next_event(ann, Ended, within=20)
        assert ended.orphaned_by == hana.node_id and "no co-host" in ended.reason
    await again.start()
    try:
        second = await again.host("Fragile, again")
        notice = await next_event(ann, Notice, lambda e: "Hana is back" in e.text, within=20)
        assert "'Fragile, again'" in notice.text
        joined = await next_event(ann, Joined, within=20)
        assert joined.room == second
    finally:
        await again.stop()


async def test_a_host_back_without_host_sees_its_room_as_its_own_and_takes_it_back(
    make_node: Callable[..., Any],
) -> None:
    """The app restarted plainly (no --host): the lobby marks the room the co-host keeps as
    this node's, and joining it reclaims it, so the host keys it is offered work."""
    hana, cody, ann = await make_node("Hana"), await make_node("Cody"), await make_node("Ann")
    room = await hana.host("Kept warm")
    for node in (cody, ann):
        await node.join(room.hex())
    await _promote(hana, cody, cohost=True)
    _silence(hana)
    await next_event(ann, AuthorityChanged, lambda e: e.authority == cody.node_id, within=20)
    await hana.stop()
    again = Node(hana.identity, NodeConfig("Hana", LOOPBACK))
    await again.start()
    try:
        found = await next_event(again, RoomFound, lambda e: e.room == room, within=20)
        assert found.host == cody.node_id and found.owner == hana.node_id
        await again.join(room.hex())
        back = await next_event(ann, AuthorityChanged, lambda e: e.authority == hana.node_id)
        assert back.authority == hana.node_id
        await again.request(Action(ActionKind.SET_TITLE, text="Mine again"))
        await next_event(ann, StateChanged, lambda e: e.state.title == "Mine again")
    finally:
        await again.stop()


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
    after = await drain(cody, 3.0)
    assert [e for e in after if isinstance(e, RoomLost)] == []
    assert room_id in ann.rooms  # the others see it advertised by its new host
    assert ann.rooms[room_id].advert.node_id == cody.node_id


async def test_a_cohost_starved_of_cpu_does_not_take_the_room_from_a_live_host(
    make_node: Callable[..., Any],
) -> None:
    """The process is starved for longer than the host's lease: when it runs again, the
    host's heartbeats of that time are still unread, and the co-host's lateness is not the
    host's silence: no takeover, the same authority and epoch."""
    host, cora, ann = await make_node("Hana"), await make_node("Cora"), await make_node("Ann")
    room = await host.host("Busy hall")
    for node in (cora, ann):
        await node.join(room.hex())
    await _promote(host, cora, cohost=True)
    await asyncio.sleep(1.5)
    assert cora.replica is not None
    epoch = cora.replica.state.epoch
    time.sleep(DEFAULT_TIMING.lease_s + 1.5)  # noqa: ASYNC251 - no CPU for this event loop
    await asyncio.sleep(DEFAULT_TIMING.lease_s + 1.0)
    for node in (host, cora, ann):
        state = node.replica.state if node.replica else None
        assert state is not None, f"{node.name} is out of the room"
        assert (state.authority, state.epoch) == (host.node_id, epoch), f"{node.name}'s view"
