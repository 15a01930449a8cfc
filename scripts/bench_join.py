#!/usr/bin/env python3
"""Benchmark joining a room on loopback, with plain aiortc measured in the same run.

Prints median and p95 over N joins of:
  (a) host advert -> room listed in a browsing node (real zeroconf)
  (b) join command -> control channel up (signaling, signed offer/answer, ICE, DTLS, SCTP)
  (c) join command -> snapshot verified (the whole join)
and, as the baseline, plain aiortc: two RTCPeerConnections in one process exchanging offer and
answer in memory, until a data channel opens.

Then a host in its own process holds 50 joined listeners: its connections, its RSS, and its CPU%
while the room idles (heartbeats only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import threading
import time

from aiortc import RTCConfiguration, RTCPeerConnection
from benchkit import cpu_seconds, rss_mb

from p2pspaces.core.events import Event, RoomFound
from p2pspaces.core.identity import Identity
from p2pspaces.net import ice
from p2pspaces.net.mesh import Link
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.testing.command import start_argv

LOOPBACK = "127.0.0.1"


class TimedNode(Node):
    """A node that notes when its control channel comes up."""

    link_up_at = 0.0

    def __init__(self, name: str) -> None:
        super().__init__(Identity.generate(), NodeConfig(name, interface=LOOPBACK))
        hear = self.news.on_link_up

        def on_link_up(link: Link) -> None:
            self.link_up_at = time.perf_counter()
            hear(link)

        vars(self.news)["on_link_up"] = on_link_up  # this instance's, before its class's


async def wait_event(node: Node, kind: type[Event], within: float = 20.0) -> Event:
    async with asyncio.timeout(within):
        while True:
            event = await node.events.get()
            if isinstance(event, kind):
                return event


async def one_join(watcher: Node, index: int) -> tuple[float, float, float]:
    host = Node(Identity.generate(), NodeConfig(f"Host{index}", interface=LOOPBACK))
    joiner = TimedNode(f"Joiner{index}")
    await host.start()
    await joiner.start()
    try:
        while not watcher.events.empty():
            watcher.events.get_nowait()
        start = time.perf_counter()
        room_id = await host.host(f"Bench room {index}")
        while (await wait_event(watcher, RoomFound)).room != room_id:  # type: ignore[attr-defined]
            pass
        listed = time.perf_counter() - start
        if room_id not in joiner.rooms:
            while (await wait_event(joiner, RoomFound)).room != room_id:  # type: ignore[attr-defined]
                pass
        start = time.perf_counter()
        await joiner.join(room_id.hex())
        joined = time.perf_counter() - start
        return listed, joiner.link_up_at - start, joined
    finally:
        await joiner.stop()
        await host.stop()


async def plain_aiortc() -> float:
    a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    opened = asyncio.Event()
    channel = a.createDataChannel("control", negotiated=True, id=0)
    b.createDataChannel("control", negotiated=True, id=0)
    channel.on("open", opened.set)
    start = time.perf_counter()
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(opened.wait(), 10)
    elapsed = time.perf_counter() - start
    await a.close()
    await b.close()
    return elapsed


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{label:44} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms"


async def joins(count: int) -> None:
    ice.use_addresses((LOOPBACK,))
    baseline = [await plain_aiortc() for _ in range(count)]
    watcher = Node(Identity.generate(), NodeConfig("Watcher", interface=LOOPBACK))
    await watcher.start()
    results = []
    try:
        for index in range(count):
            results.append(await one_join(watcher, index))
    finally:
        await watcher.stop()
    listed, channel, joined = zip(*results, strict=True)
    print(f"joins on loopback, {count} runs")
    print(summary("(a) host advert -> room listed", list(listed)))
    print(summary("(b) join command -> control channel up", list(channel)))
    print(summary("(c) join command -> snapshot verified", list(joined)))
    print(summary("baseline: plain aiortc data channel open", baseline))


def start_host() -> tuple[subprocess.Popen[bytes], str]:
    """A hosting node in its own process, so that its CPU can be measured alone."""
    home = tempfile.mkdtemp(prefix="p2ps-bench-")
    argv = start_argv("--host", "Big room", home=home, name="Host", headless=True)
    host = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert host.stdout is not None
    room = ""
    while not room:
        event = json.loads(host.stdout.readline())
        room = event.get("room", "") if event["event"] == "joined" else ""
    # Keep reading its events, or a full pipe would stall the host.
    threading.Thread(target=lambda: [None for _ in host.stdout], daemon=True).start()  # type: ignore[union-attr]
    return host, room


async def fifty(host: subprocess.Popen[bytes], room: str, listeners: int, idle: float) -> None:
    nodes = []
    try:
        for index in range(listeners):
            node = Node(Identity.generate(), NodeConfig(f"L{index:02d}", interface=LOOPBACK))
            await node.start()
            await node.join(room)
            nodes.append(node)
        await asyncio.sleep(3)
        before = cpu_seconds(host.pid)
        await asyncio.sleep(idle)
        used = cpu_seconds(host.pid) - before
        members = len(nodes[-1].replica.state.members) if nodes[-1].replica else 0
        print(f"authority holding {listeners} joined listeners ({members} members in its state):")
        print(
            f"  CPU while idle {100 * used / idle:5.1f}% of one core over {idle:.0f} s, "
            f"RSS {rss_mb(host.pid):.0f} MB"
        )
    finally:
        for node in nodes:
            await node.stop()
        host.terminate()
        host.wait(timeout=30)


def main() -> None:
    """Run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU sampling")
    args = parser.parse_args()
    asyncio.run(joins(args.joins))
    host, room = start_host()
    asyncio.run(fifty(host, room, args.listeners, args.idle))


if __name__ == "__main__":
    main()
