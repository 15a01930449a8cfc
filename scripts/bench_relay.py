#!/usr/bin/env python3
"""Relays (issue 22): what one relay hop adds, what a relay spends per listener, and the plan
of a room of 1,000 and 10,000 listeners.

1. Real nodes on loopback, in one process: a host speaking a tone that lets one listener hear
   it straight (``direct_listeners=1``), so that the next ``--children`` listeners hear it
   through that one, the relay.  Every time is ``time.perf_counter`` in the one process:
   * the direct hop: the host signs a packet and hands it to its connection -> the relay
     takes it;
   * the relay hop: the relay takes it -> a listener behind it takes it (signature checked),
     over every listener and packet of a ``--seconds`` window, ``--runs`` times;
   * the relay's CPU spent passing packets on (thread time inside its forwarding), per
     listener behind it, in % of one core;
   * then the relay's laptop dies (nothing more leaves it): the time until every listener
     behind it hears the host again (the host gives them another relay, or the host straight,
     once the relay has been quiet for 2.5 heartbeats; real timings, 1 s heartbeats).
   Everything shares one event loop here, so both hops include waiting for the other nodes'
   work: an upper bound of what separate laptops see.
2. The authority's plan, in memory (the session kit's replica, no network): listeners join one
   by one and each review is timed; then a relay dies and its listeners are re-parented.  With
   the figures of part 1 and ``scripts/bench_core.py`` (signing and checking a packet), the
   model (3.) gives each node's expected CPU and each listener's delay, its assumptions
   printed with it.
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
from p2pspaces.audio.proof import VoiceChecker, sign_packet, without_proof
from p2pspaces.audio.relay import Relayed
from p2pspaces.core import room, statebytes
from p2pspaces.core.events import Joined
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.relays import RelayPlanner
from p2pspaces.core.room import RELAY_FANOUT
from p2pspaces.core.settings import DEFAULT_TIMING
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

LOOPBACK = "127.0.0.1"
TIMING = DEFAULT_TIMING


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
        figures = await _measure(host, relay, behind, seconds)
        figures["failover_s"] = await _failover(host, relay, behind)
        return figures
    finally:
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)


async def _measure(host: Node, relay: Node, behind: list[Node], seconds: float) -> dict[str, Any]:
    sent: dict[int, float] = {}
    at_relay: dict[int, float] = {}
    at_child: list[tuple[int, float]] = []
    forwarding = [0.0]
    routes = host.audio.broadcaster.routes
    prove = routes.prove

    def timed_prove(pts: int, payload: bytes) -> tuple[int, bytes] | None:
        proven = prove(pts, payload)  # once a frame, as the host starts sending it
        opened = without_proof(proven[1]) if proven is not None else None
        if opened is not None:
            sent[opened[0]] = time.perf_counter()
        return proven

    routes.prove = timed_prove  # type: ignore[method-assign]
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


async def _failover(host: Node, relay: Node, behind: list[Node]) -> float:
    """The relay's laptop dies (nothing more leaves it): seconds until every listener behind
    it hears the host again (10 packets more than at the moment it died)."""
    for link in relay.mesh.links.values():
        link.channel.send = lambda data: None  # type: ignore[method-assign]
    relay.mesh.broadcast = lambda data: None  # type: ignore[method-assign]
    relay.audio.relay = None

    def received(node: Node) -> int:
        stream = node.audio.streams.get(host.node_id)
        return stream.stats.received if stream is not None else 0

    start = time.perf_counter()
    before = {n.node_id: received(n) for n in behind}
    while not all(received(n) >= before[n.node_id] + 10 for n in behind):
        if time.perf_counter() - start > 30:
            return float("inf")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


def part_one(children: list[int], seconds: float, runs: int) -> dict[str, float]:
    """Prints each count's figures; returns the largest count's medians (for the model)."""
    figures: dict[str, float] = {}
    print(f"1. one relay hop, real nodes on loopback in one process ({seconds:g} s windows)")
    for count in children:
        medians, p95s, directs, cpus, delivered, failover = [], [], [], [], [], []
        for _ in range(runs):
            result = asyncio.run(one_run(count, seconds))
            medians.append(statistics.median(result["hop_ms"]))
            p95s.append(pct(result["hop_ms"], 0.95))
            directs.append(statistics.median(result["direct_ms"]))
            cpus.append(result["forward_pct_per_child"])
            delivered.append(result["delivered"])
            failover.append(result["failover_s"])
        print(
            f"  {count} listener(s) behind the relay, {runs} runs: "
            f"relay hop median {_spread(medians)} ms (p95 {_spread(p95s)} ms); "
            f"direct hop median {_spread(directs)} ms; "
            f"passing on {_spread(cpus, 2)}% of a core per listener; "
            f"delivered {min(delivered):.1%}-{max(delivered):.1%} of packets; "
            f"the relay dies -> all hear again after {_spread(failover)} s"
        )
        figures = {
            "hop_ms": statistics.median(medians),
            "hop_p95_ms": statistics.median(p95s),
            "direct_ms": statistics.median(directs),
            "per_child_pct": statistics.median(cpus),
            "failover_s": statistics.median(failover),
        }
    return figures


def _spread(values: list[float], digits: int = 1) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} [{low:.{digits}f}-{high:.{digits}f}]"


# --- 2. the plan of a large room, in memory -------------------------------------------------


def part_two(sizes: list[int], direct: int) -> dict[int, dict[str, Any]]:
    """Prints each size's plan; returns its tiers and review time (for the model)."""
    plans: dict[int, dict[str, Any]] = {}
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
            f"  {size:>6} listeners: straight {hops[0]}, "
            f"1/2/3 relays away {hops[1]}/{hops[2]}/{hops[3]}; "
            f"{len(per_relay)} relays, at most {max(per_relay.values(), default=0)} each "
            f"(limit {RELAY_FANOUT}); {issued} relay changes; review median "
            f"{1000 * statistics.median(reviews):.1f} ms, max {1000 * max(reviews):.1f} ms; "
            f"state {size_kb:.0f} KB; whole build {total:.1f} s"
        )
        plans[size] = {
            "hops": hops,
            "review_ms": 1000 * statistics.median(reviews),
            "state_kb": size_kb,
            "direct": direct,
        }
        dead = per_relay.most_common(1)[0][0]
        orphans = per_relay[dead]
        reviews.clear()
        changes = _settle(space, planner, reviews, down=frozenset({dead}) if dead else frozenset())
        print(
            f"          a relay dies: its {orphans} listeners re-parented with {changes} "
            f"changes in {len(reviews)} review(s), {1000 * sum(reviews):.1f} ms"
        )
    return plans


def packet_costs(rounds: int = 300) -> tuple[float, float]:
    """Microseconds to sign one voice packet, and to check one (``audio/proof.py``)."""
    voice = Identity.generate()
    payload = os.urandom(80)
    start = time.perf_counter()
    signatures = [sign_packet(voice, b"r" * 32, 960 * i, payload) for i in range(rounds)]
    signed = time.perf_counter() - start
    checker = VoiceChecker(voice.node_id, b"r" * 32)
    start = time.perf_counter()
    for i, signature in enumerate(signatures):
        checker.check(960 * i, payload, signature)
    checked = time.perf_counter() - start
    return 1e6 * signed / rounds, 1e6 * checked / rounds


def part_three(
    hop: dict[str, float],
    plans: dict[int, dict[str, Any]],
    per_listener_pct: float,
    per_member_pct: float,
    lan_ms: float,
) -> None:
    """The model: each node's CPU and each listener's delay, from the figures above."""
    sign_us, check_us = packet_costs()
    print(
        '\n3. the model (docs/design-notes.md, "Relays"), one speaker, 50 packets/s\n'
        "   assumptions: each laptop a core like this machine's; a straight listener costs a\n"
        f"   speaker {per_listener_pct:.2f}% of a core (scripts/bench_room.py: 37.4% for 200);"
        f" signing {sign_us:.0f} us\n"
        f"   and checking {check_us:.0f} us a packet (measured now); passing a packet on "
        f"{hop['per_child_pct']:.2f}% of a core\n"
        f"   per listener (part 1); a relay hop adds {hop['hop_ms']:.1f} ms median "
        f"(p95 {hop['hop_p95_ms']:.1f} ms) on loopback,\n"
        f"   plus the LAN's own {lan_ms:g} ms a hop (a switch; Wi-Fi adds more); the "
        f"authority reviews the plan once a second\n"
        f"   and still holds a control link with every member (heartbeats, updates): "
        f"{per_member_pct:.3f}% of a core per member\n"
        f"   (scripts/bench_room.py: the host at 18.9% with 200 listeners)"
    )
    check_pct = 100 * check_us * 50 / 1e6
    sign_pct = 100 * sign_us * 50 / 1e6
    for size, plan in plans.items():
        hops: Counter[int] = plan["hops"]
        straight = hops[0]
        speaker = straight * per_listener_pct + sign_pct
        relay = 8 * hop["per_child_pct"] + check_pct
        deepest = max(h for h, n in hops.items() if n)
        delays = [hop["direct_ms"] + lan_ms + h * (hop["hop_ms"] + lan_ms) for h in range(4)]
        relayed = sum(n for h, n in hops.items() if h)
        mean_ms = sum(delays[h] * n for h, n in hops.items()) / max(1, sum(hops.values()))
        print(
            f"  {size:>6} listeners: speaker {speaker:.1f}% of a core "
            f"(without relays {size * per_listener_pct:.0f}%, i.e. "
            f"{size * per_listener_pct / 100:.1f} cores); a full relay "
            f"{relay:.1f}%; a relayed listener +{check_pct:.2f}% (checking); "
            f"the authority's reviews {plan['review_ms'] / 10:.2f}% and control links "
            f"{size * per_member_pct:.0f}%\n"
            f"          added delay: straight {delays[0]:.1f} ms, deepest "
            f"({deepest} relays) {delays[deepest]:.1f} ms, mean {mean_ms:.1f} ms; "
            f"{relayed} of {size} relayed; a joiner's snapshot {plan['state_kb']:.0f} KB"
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
    parser.add_argument(
        "--per-listener-pct",
        type=float,
        default=37.4 / 200,
        help="a speaker's CPU per straight listener, %% of a core (bench_room's figure)",
    )
    parser.add_argument(
        "--per-member-pct",
        type=float,
        default=18.9 / 200,
        help="the authority's CPU per member's control link, %% of a core (bench_room's figure)",
    )
    parser.add_argument("--lan-ms", type=float, default=0.5, help="a LAN hop's own delay")
    args = parser.parse_args()
    hop = part_one([int(c) for c in args.children.split(",")], args.seconds, args.runs)
    plans = part_two([int(s) for s in args.sizes.split(",")], args.direct)
    part_three(hop, plans, args.per_listener_pct, args.per_member_pct, args.lan_ms)


if __name__ == "__main__":
    main()
