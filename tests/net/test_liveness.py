"""Liveness is ours: silent peers are dropped, lost links are retried, adverts are withdrawn."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pspaces.audio.devices import ToneSource
from p2pspaces.core.events import ErrorEvent, Joined, RoomFound, RoomLost, Speaking, StateChanged
from p2pspaces.core.identity import Identity
from p2pspaces.core.settings import DEFAULT_TIMING, Timing
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.net import discovery
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.node.links import Lateness
from p2pspaces.testing.command import start_argv

from .conftest import LOOPBACK, next_event


async def test_a_silent_member_is_dropped_from_the_roster(
    make_node: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = Timing(peer_timeout_s=2.0)
    host = await make_node("Hana", timing=fast)
    ann = await make_node("Ann", timing=fast)
    zed = await make_node("Zed", timing=fast)
    room_id = await host.host("Quiet ones leave")
    await ann.join(room_id.hex())
    await zed.join(room_id.hex())
    await next_event(ann, StateChanged, lambda e: zed.node_id in e.state.members)
    # Zed's laptop lid closes: it stops sending anything at all, and cannot reconnect.
    monkeypatch.setattr(zed.mesh, "broadcast", lambda data: None)

    async def unplugged(host: str, port: int) -> None:
        raise OSError("unplugged")

    monkeypatch.setattr(zed.mesh, "connect", unplugged)
    gone = await next_event(ann, StateChanged, lambda e: zed.node_id not in e.state.members)
    assert ann.node_id in gone.state.members


async def test_a_member_whose_link_breaks_reconnects_and_keeps_its_place(
    make_node: Callable[..., Any],
) -> None:
    host, ann = await make_node("Hana"), await make_node("Ann")
    room_id = await host.host("Flaky cable")
    await ann.join(room_id.hex())
    await host.request(Action(ActionKind.INVITE_SPEAKER, ann.node_id))
    await ann.request(Action(ActionKind.RAISE_HAND))  # refused later or not: just traffic
    await next_event(host, StateChanged, lambda e: e.state.seq >= 2)
    before = host.replica.state
    host.mesh.drop(ann.node_id, "test: cable pulled")
    lost = await next_event(ann, ErrorEvent, lambda e: e.code == "authority_lost")
    assert "control channel closed" in lost.reason or "connection" in lost.reason
    await asyncio.sleep(DEFAULT_TIMING.grace_s + 1.0)
    assert ann.node_id in host.mesh.links
    # Back within the grace period: still a member with the same role, nothing was undone.
    assert host.replica.state.members[ann.node_id] == before.members[ann.node_id]
    assert ann.replica.hash() == host.replica.hash()


async def test_sigint_leaves_cleanly_and_withdraws_the_advert(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    watcher = await make_node("Watcher")
    proc = await asyncio.create_subprocess_exec(
        *start_argv("--host", "Goodbye test", home=tmp_path, name="Hana", headless=True),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    found = await next_event(watcher, RoomFound, lambda e: e.title == "Goodbye test")
    proc.send_signal(signal.SIGINT)
    lost = await next_event(watcher, RoomLost, lambda e: e.room == found.room, within=5)
    assert lost.room == found.room
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert proc.stdout is not None
    events = [json.loads(line)["event"] for line in (await proc.stdout.read()).splitlines()]
    assert events[-2:] == ["ended", "left"]
    assert Joined.NAME in events


async def test_a_crashed_hosts_room_leaves_the_lobby_within_its_adverts_ttl(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    """kill -9: no goodbye packet.  python-zeroconf keeps the PTR record for 1125 s, so the row
    stayed about a minute (or longer); the expired TXT record now takes it away."""
    watcher = await make_node("Watcher")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "p2pspaces", "start", "--headless", "--interface", LOOPBACK,
        "--home", str(tmp_path), "--name", "Hana", "--host", "Crash test",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        found = await next_event(watcher, RoomFound, lambda e: e.title == "Crash test")
        proc.kill()
        # Gone within twice the TTL (a loose bound a busy machine keeps); before, the pinned
        # PTR record kept it for minutes.
        await next_event(
            watcher, RoomLost, lambda e: e.room == found.room, within=2 * discovery.TTL
        )
        assert found.room.hex() not in {r.room.hex() for r in watcher.room_list()}
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_speaker_whose_messages_run_late_is_not_dropped_while_its_audio_flows(
    make_node: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overloaded speaker's heartbeats can be seconds late while its audio still flows:
    audio counts as a sign of life, so listeners do not drop it (and then redial in a storm)."""
    host = Node(Identity.generate(), NodeConfig("Hana", LOOPBACK), source=ToneSource(440))
    await host.start()
    try:
        ann = await make_node("Ann")
        room_id = await host.host("Busy speaker")
        await ann.join(room_id.hex())
        await next_event(ann, Speaking, lambda e: e.member == host.node_id)
        send = host.mesh._send

        def late(link: Any, data: bytes) -> None:  # nothing on the control channel to Ann
            if link.peer_id != ann.node_id:
                send(link, data)

        monkeypatch.setattr(host.mesh, "_send", late)
        await asyncio.sleep(DEFAULT_TIMING.peer_timeout_s + 2.0)
        assert host.node_id in ann.mesh.links
        lost = [e for e in _seen(ann) if isinstance(e, ErrorEvent) and e.code == "authority_lost"]
        assert lost == []
    finally:
        await host.stop()


def _seen(node: Any) -> list[Any]:
    events = []
    while not node.events.empty():
        events.append(node.events.get_nowait())
    return events


async def test_a_node_that_falls_behind_does_not_drop_its_links_for_its_own_lateness(
    make_node: Callable[..., Any],
) -> None:
    """The whole process is starved for longer than the peer timeout (a laptop short of CPU,
    or suspended a moment): when it runs again, its peers' messages are still unread, but the
    time it lost is not their silence: no link is dropped, nobody redials, nobody leaves."""
    fast = Timing(peer_timeout_s=2.0)
    host = await make_node("Hana", timing=fast)
    ann = await make_node("Ann", timing=fast)
    room_id = await host.host("Busy laptop")
    await ann.join(room_id.hex())
    await next_event(host, StateChanged, lambda e: ann.node_id in e.state.members)
    await asyncio.sleep(1.0)
    links = {node.name: dict(node.mesh.links) for node in (host, ann)}
    time.sleep(3.0)  # noqa: ASYNC251 - the point: this event loop gets no CPU for 3 s
    await asyncio.sleep(3.0)  # the watches run again, twice the timeout after the stall
    for node in (host, ann):
        assert dict(node.mesh.links) == links[node.name], f"{node.name} dropped a link"
    assert host.replica is not None and ann.node_id in host.replica.state.members


def test_lateness_is_forgiven_only_for_as_long_as_it_lasted() -> None:
    late = Lateness(window_s=5.0)
    assert late.note(10.0, 0.1) == 0  # a little late: nothing to forgive
    assert late.note(13.0, 3.0) == 3.0  # asleep 3 s: peers get 3 s more
    assert late.note(16.0, 1.0) == 4.0
    assert late.note(21.5, 0.0) == 1.0  # the 3 s are long past
    assert late.note(40.0, 0.0) == 0
