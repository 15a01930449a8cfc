#!/usr/bin/env python3
"""Relays (issue 22): what one relay hop adds, what a relay spends per listener, and the plan
of a room of 1,000 and 10,000 listeners.

1. Real nodes on loopback, in one process: a host speaking a tone that lets one listener hear
   it straight (``direct_listeners=1``), so that the next ``--children`` listeners hear it
   through that one, the relay.  Every time is ``time.perf_counter`` in the one process:
   * the direct hop: the host hands a packet to its connections -> the relay takes it;
   * the relay hop: the relay takes it -> a listener behind it takes it (signature checked),
     over every listener and packet of a ``--seconds`` window, ``--runs`` times;
   * the relay's CPU spent passing packets on (thread time inside its forwarding), per
     listener behind it, in % of one core.
   Everything shares one event loop here, so both hops include waiting for the other nodes'
   work: an upper bound of what separate laptops see.
2. The authority's plan, in memory (the session kit's replica, no network): listeners join one
   by one and each review is timed; then a relay dies and its listeners are re-parented.  With
   the figures of part 1 and ``scripts/bench_core.py`` (signing and checking a packet), the
   model in docs/BENCHMARKS.md gives each node's expected CPU and each listener's delay.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import Counter
from typing import Any

from p2pspaces.audio.devices import ToneSource
from p2pspaces.audio.relay import Relayed
from p2pspaces.core import room, statebytes
from p2pspaces.core.events import Joined
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.relays import RelayPlanner
from p2pspaces.core.room import RELAY_FANOUT
from p2pspaces.core.settings import Timing
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

LOOPBACK = "127.0.0.1"
TIMING = Timing(heartbeat_s=0.5, lease_s=2.0, grace_s=2.0, peer_timeout_s=3.0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. one relay hop, with real nodes ------------------------------------------------------


async def _wait(node: Node, kind: type[Any], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not isinstance(await node.events.get(), kind):
            pass


async def one_run(children: int, seconds: float) -> dict[str, Any]:
    nodes: list[Node] = []

    async def make(name: str, **options: Any) -> Node:
        config = NodeConfig(name, interface=LOOPBACK, timing=TIMING, direct_listeners=1)
        node = Node(Identity.generate(), config, **options)
        await node.start()
        nodes.append(node)
        return node

    try:
        host = await make("Hana", source=ToneSource(440))
        room_id = await host.host("Relay bench")
        relay = await make("Relay")
        await relay.join(room_id.hex()[:8])
        await _wait(relay, Joined)
        behind = []
        for i in range(children):
            node = await make(f"L{i}")
            await node.join(room_id.hex()[:8])
            await _wait(node, Joined)
            behind.append(node)
        deadline = time.monotonic() + 20

        def relayed(node: Node) -> bool:
            state = host.session.state
            member = state.members.get(node.node_id) if state is not None else None
            return member is not None and member.via == relay.node_id

        while not all(relayed(n) for n in behind):
            if time.monotonic() > deadline:
                raise RuntimeError("the listeners were not all given the relay")
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # links up, streams flowing
        return await _measure(host, relay, behind, seconds)
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


async def _measure(host: Node, relay: Node, behind: list[Node], seconds: float) -> dict[str, Any]:
    sent: dict[int, float] = {}
    at_relay: dict[int, float] = {}
    at_child: list[tuple[int, float]] = []
    forwarding = [0.0]
    broadcaster = host.audio.broadcaster
    host_send = broadcaster.send

    async def timed_send(frame: Any, pts: int) -> bytes:
        payload = await host_send(frame, pts)
        sent[pts % (1 << 32)] = time.perf_counter()
        return payload

    broadcaster.send = timed_send  # type: ignore[method-assign]
    path = relay.audio.relay
    assert path is not None
    take, forward = path.take, path.forward

    def relay_take(peer: bytes, tag: int, data: bytes) -> Relayed | None:
        packet = take(peer, tag, data)
        if packet is not None:
            at_relay[packet.timestamp] = time.perf_counter()
        return packet

    async def relay_forward(packet: Relayed, outlets: Any) -> None:
        start = time.thread_time()
        await forward(packet, outlets)
        forwarding[0] += time.thread_time() - start

    path.take = relay_take  # type: ignore[method-assign]
    path.forward = relay_forward  # type: ignore[method-assign]
    for child in behind:
        child_path = child.audio.relay
        assert child_path is not None
        child_take = child_path.take

        def timed(peer: bytes, tag: int, data: bytes, _take: Any = child_take) -> Relayed | None:
            packet: Relayed | None = _take(peer, tag, data)
            if packet is not None:
                at_child.append((packet.timestamp, time.perf_counter()))
            return packet

        child_path.take = timed  # type: ignore[method-assign]
    refused = sum(c.audio.refused_packets for c in behind)
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    spent = time.perf_counter() - start
    direct = [at_relay[p] - sent[p] for p in at_relay if p in sent]
    hop = [t - at_relay[p] for p, t in at_child if p in at_relay]
    packets = len(at_relay)
    return {
        "direct_ms": [1000 * d for d in direct],
        "hop_ms": [1000 * h for h in hop],
        "forward_pct_per_child": 100 * forwarding[0] / spent / max(1, len(behind)),
        "delivered": len(at_child) / max(1, packets * len(behind)),
        "refused": sum(c.audio.refused_packets for c in behind) - refused,
    }


def part_one(children: list[int], seconds: float, runs: int) -> None:
    print(f"1. one relay hop, real nodes on loopback in one process ({seconds:g} s windows)")
    for count in children:
        medians, p95s, directs, cpus, delivered = [], [], [], [], []
        for _ in range(runs):
            result = asyncio.run(one_run(count, seconds))
            medians.append(statistics.median(result["hop_ms"]))
            p95s.append(pct(result["hop_ms"], 0.95))
            directs.append(statistics.median(result["direct_ms"]))
            cpus.append(result["forward_pct_per_child"])
            delivered.append(result["delivered"])
        print(
            f"  {count} listener(s) behind the relay, {runs} runs: "
            f"relay hop median {_spread(medians)} ms (p95 {_spread(p95s)} ms); "
            f"direct hop median {_spread(directs)} ms; "
            f"passing on {_spread(cpus, 2)}% of a core per listener; "
            f"delivered {min(delivered):.1%}-{max(delivered):.1%} of packets"
        )


def _spread(values: list[float], digits: int = 1) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"


# --- 2. the plan of a large room, in memory -------------------------------------------------


def part_two(sizes: list[int], direct: int) -> None:
    print(f"\n2. the authority's plan in memory, {direct} listeners straight")
    for size in sizes:
        space = Room()
        planner = RelayPlanner(direct)
        reviews: list[float] = []
        issued = 0
        start = time.perf_counter()
        for i in range(size):
            space.join(f"L{i}")
            if (i + 1) % 50 == 0 or i + 1 == size:  # a review every 200 ms: a burst of joins
                issued += _settle(space, planner, reviews)
        total = time.perf_counter() - start
        state = space.state
        hops = Counter(state.hops(n) for n in state.members if n != state.host)
        per_relay = Counter(m.via for m in state.members.values() if m.via is not None)
        size_kb = len(statebytes.encode_state(state)) / 1024
        print(
            f"  {size:>6} listeners: straight {hops[0]}, one relay away {hops[1]}, two {hops[2]}; "
            f"{len(per_relay)} relays, at most {max(per_relay.values(), default=0)} each "
            f"(limit {RELAY_FANOUT}); {issued} relay changes; review median "
            f"{1000 * statistics.median(reviews):.1f} ms, max {1000 * max(reviews):.1f} ms; "
            f"state {size_kb:.0f} KB; whole build {total:.1f} s"
        )
        dead = per_relay.most_common(1)[0][0]
        orphans = per_relay[dead]
        reviews.clear()
        changes = _settle(space, planner, reviews, down=frozenset({dead}) if dead else frozenset())
        print(
            f"          a relay dies: its {orphans} listeners re-parented with {changes} "
            f"changes in {len(reviews)} review(s), {1000 * sum(reviews):.1f} ms"
        )


class Room:
    """A room held by its host's replica, in memory; members are bare keys (nobody else signs
    anything in this model: the authority issues every change)."""

    def __init__(self) -> None:
        self.host = Identity.generate()
        genesis = room.genesis_record(
            self.host, "Host", "Model", created_ms=0, nonce=os.urandom(16)
        )
        self.replica = Replica.from_genesis(genesis)

    @property
    def state(self) -> room.RoomState:
        return self.replica.state

    def join(self, name: str) -> None:
        self.issue(NodeId(os.urandom(32)), Action(ActionKind.JOIN, text=name))

    def issue(self, actor: NodeId, action: Action) -> None:
        self.replica.issue(self.host, actor, action)


def _settle(
    space: Room, planner: RelayPlanner, reviews: list[float], down: frozenset[NodeId] = frozenset()
) -> int:
    made = 0
    while True:
        start = time.perf_counter()
        changes = planner.review(space.state, lambda n: n not in down)
        reviews.append(time.perf_counter() - start)
        for action in changes:
            space.issue(space.host.node_id, action)
        made += len(changes)
        if not changes:
            return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", default="1,4,8", help="listeners behind the relay")
    parser.add_argument("--seconds", type=float, default=10.0, help="window per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000", help="room sizes planned in memory")
    parser.add_argument("--direct", type=int, default=100, help="listeners heard straight")
    args = parser.parse_args()
    part_one([int(c) for c in args.children.split(",")], args.seconds, args.runs)
    part_two([int(s) for s in args.sizes.split(",")], args.direct)


if __name__ == "__main__":
    main()
