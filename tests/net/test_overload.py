"""A speaker whose laptop is short of CPU: the room degrades in a chosen order, never storms.

The speaker is a real node in its own process, held by a cgroup to a small share of one core
(:mod:`p2pspaces.testing.cpu`); the host and the listeners are real nodes on loopback.  The
speaker can send to about a dozen listeners at that share; three times as many join.  Before
shedding, every listener's audio fell apart together (at 100 listeners on 15% of a core each
got about 23 of 50 packets a second); now those who were listening first keep the whole
stream, the others are told plainly that they may not hear that speaker for now, no link is
dropped for silence, nobody redials in a loop, and every state hash still agrees.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pspaces.core.events import Notice
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.load import AT_CAPACITY
from p2pspaces.testing.command import start_argv
from p2pspaces.testing.cpu import CpuShare, cpu_share_unavailable
from p2pspaces.testing.lan import NodeProcess

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(cpu_share_unavailable() is not None, reason=str(cpu_share_unavailable())),
]

SHARE_PCT = 9.0
FIRST = 6
"""Listeners that join while the speaker has room."""
MORE = 24
"""Listeners that join after them, past what the speaker can send to."""
WINDOW_S = 6.0


def received(listener: Node, speaker: bytes) -> int:
    stream = listener.audio.streams.get(speaker)
    return stream.stats.received if stream is not None else 0


async def rates(listeners: list[Node], speaker: bytes) -> list[float]:
    """Packets a second each listener receives from the speaker, over a window."""
    before = [received(node, speaker) for node in listeners]
    await asyncio.sleep(WINDOW_S)
    return [(received(n, speaker) - b) / WINDOW_S for n, b in zip(listeners, before, strict=True)]


async def test_an_overloaded_speaker_keeps_its_first_listeners_and_refuses_the_rest_plainly(
    make_node: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    hana: Node = await make_node("Hana")
    await hana.host("Packed hall")
    address = hana.join_addresses[0]
    argv = start_argv(
        *("--join", address, "--input", "tone", "--output", "none", "--no-web", "-v"),
        home=tmp_path / "sam",
        name="Sam",
        headless=True,
    )
    with CpuShare(SHARE_PCT) as share:
        sam = NodeProcess(argv, tmp_path / "sam.log")
        try:
            # (its events are awaited in a thread: Hana shares this event loop)
            sam_id = bytes.fromhex((await asyncio.to_thread(sam.wait_for, "ready"))["node"])
            await asyncio.to_thread(sam.wait_for, "joined")
            await hana.request(Action(ActionKind.INVITE_SPEAKER, sam_id))  # type: ignore[arg-type]
            invited = lambda e: any(m.get("invited") for m in e["members"])  # noqa: E731
            await asyncio.to_thread(sam.wait_for, "state", invited)
            sam.send(cmd="request", action="accept_invite")
            await _until(lambda: hana.replica is not None and hana.replica.state.may_speak(sam_id))
            share.add(sam.proc.pid)  # once on stage (Python's start-up alone would take long)

            first = [await _listener(make_node, f"First{i}", address, i) for i in range(FIRST)]
            await _until(lambda: all(received(n, sam_id) > 100 for n in first), within=30)
            alone = await rates(first, sam_id)
            assert min(alone) >= 45, f"the first listeners, before the crowd: {alone}"

            mark = len(caplog.text)
            late = [await _listener(make_node, f"Late{i}", address, FIRST + i) for i in range(MORE)]
            await asyncio.sleep(12)  # the speaker is busy, then sheds
            kept = await rates(first, sam_id)
            crowd = await rates(late, sam_id)

            # Those who were listening first still hear the whole stream.
            assert min(kept) >= 45, f"the first listeners, in the crowd: {kept}"
            heard = sum(rate >= 45 for rate in crowd)  # as many as it can still send to
            refused = [node for node, rate in zip(late, crowd, strict=True) if rate == 0]
            assert refused, f"every late listener hears the speaker: {crowd}"
            # Each refused listener was told, in words, once.
            for node in refused:
                notices = [
                    e
                    for e in _drain(node)
                    if isinstance(e, Notice) and "Sam's laptop is at capacity" in e.text
                ]
                assert len(notices) == 1, [e.text for e in notices]
            # No link dropped for silence, no redial loop (each refused listener asks again
            # 10 to 30 s later, and a shed one once at once: a few times in this window, not
            # every quarter second as a plain backoff would), the state agrees.
            log = caplog.text + (tmp_path / "sam.log").read_text(errors="replace")
            assert "silent for" not in log
            asks = caplog.text[mark:].count(f"refused by the peer: {AT_CAPACITY}")
            assert asks <= 3 * len(refused) + 3, f"{asks} refusals for {len(refused)} refused"
            assert hana.replica is not None
            assert hana.replica.state.may_speak(sam_id)  # the speaker was never lost
            replicas = [n.replica for n in [*first, *late]]
            assert all(r is not None for r in replicas)  # nobody lost the room
            assert {r.hash() for r in replicas if r is not None} == {hana.replica.hash()}
            print(f"first {kept}; crowd: {heard} hear, {len(refused)} refused; {asks} refusals")
        finally:
            sam.stop()


async def _listener(make_node: Callable[..., Any], name: str, address: str, index: int) -> Node:
    """A listener with an address of its own (signaling counts attempts per address; at a
    real event each laptop has its own), joined by address (thirty zeroconfs in one process
    would measure zeroconf, not the room)."""
    node: Node = await make_node(name, mdns=False, interface=f"127.3.0.{index + 1}")
    await node.join(address)
    return node


async def _until(done: Callable[[], bool], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not done():  # noqa: ASYNC110 - node state, no event to wait on
            await asyncio.sleep(0.1)


def _drain(node: Node) -> list[Any]:
    events = []
    while not node.events.empty():
        events.append(node.events.get_nowait())
    return events
