#!/usr/bin/env python3
"""Soak and churn on loopback (issue 11, part 3): a Space with two speakers talking while
listeners join and leave every few seconds, one host action a second, a chat line a second, and
the second speaker's link to the host cut every minute.  Real nodes (zeroconf, aiortc) in one
process.  At the end: every node's state hash equal, every chat line seen by the host, both
voices still heard by a listener that stayed all along, and the process's memory sampled every
10 s with its slope (a leak shows as a slope that does not flatten).

    python3 scripts/soak.py [--seconds 600] [--churn 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Callable

from benchkit import rss_mb

from p2pspaces.audio.devices import open_input
from p2pspaces.core.events import ChatReceived
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

LOOPBACK = "127.0.0.1"
LISTENERS_MAX = 6
STAY_S = 15.0


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB), in MB per minute."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


class Soak:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.drains: list[asyncio.Task[None]] = []
        self.chats_seen: set[str] = set()

    async def node(self, name: str, source: str = "none") -> Node:
        made = Node(
            Identity.generate(), NodeConfig(name, interface=LOOPBACK), source=open_input(source)
        )
        await made.start()
        self.nodes.append(made)
        self.drains.append(asyncio.ensure_future(self._drain(made)))
        return made

    async def _drain(self, node: Node) -> None:
        """Front ends read events; nobody else would here, and the queue would grow."""
        while True:
            event = await node.events.get()
            if node is self.nodes[0] and isinstance(event, ChatReceived):
                self.chats_seen.add(event.text)

    async def stop(self, node: Node) -> None:
        await node.stop()
        index = self.nodes.index(node)
        self.nodes.pop(index)
        self.drains.pop(index).cancel()


async def until(done: Callable[[], bool], within: float = 20) -> None:
    for _ in range(int(within / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the room did not settle")


class Run:
    """One soak: the room, the churn, the counts."""

    def __init__(self, soak: Soak, hana: Node, sam: Node, lee: Node, churn_s: float) -> None:
        self.soak, self.hana, self.sam, self.lee = soak, hana, sam, lee
        self.churn_s = churn_s
        self.address = hana.join_addresses[0]
        self.listeners: list[tuple[Node, float]] = []
        self.memory: list[tuple[float, float]] = []
        self.sent_chats: list[str] = []
        self.joins = self.leaves = self.cuts = self.actions = self.failures = 0

    async def tick(self, tick: int) -> None:
        """One host action (Lee's hand up, then the host lowers it) and one chat line."""
        hana, lee = self.hana, self.lee
        try:
            state = hana.replica.state if hana.replica else None
            if state is not None and lee.node_id in state.members:
                if state.members[lee.node_id].hand:
                    await hana.request(Action(ActionKind.LOWER_HAND, lee.node_id))
                else:
                    await lee.request(Action(ActionKind.RAISE_HAND))
                self.actions += 1
            line = f"line {tick}"
            await lee.chat(line)
            self.sent_chats.append(line)
        except Exception as exc:  # a refused command is counted, the soak goes on
            self.failures += 1
            logging.warning("tick %d: %s", tick, exc)

    async def churn(self, now: float) -> None:
        """Listeners who stayed long enough leave; a new one joins."""
        for node, since in list(self.listeners):
            if now - since > STAY_S:
                self.listeners.remove((node, since))
                await self.soak.stop(node)
                self.leaves += 1
        if len(self.listeners) < LISTENERS_MAX:
            node = await self.soak.node(f"L{self.joins + 1}")
            try:
                await node.join(self.address)
                self.listeners.append((node, now))
                self.joins += 1
            except Exception as exc:
                self.failures += 1
                logging.warning("join failed: %s", exc)
                await self.soak.stop(node)

    def cut(self) -> None:
        """Cut the second speaker's link to the host (the dialer must bring it back)."""
        self.hana.mesh.drop(self.sam.node_id, "soak: link cut")
        self.cuts += 1

    def report(self, seconds: float) -> bool:
        soak, hana, sam, lee = self.soak, self.hana, self.sam, self.lee
        hashes = {n.replica.hash() for n in soak.nodes if n.replica is not None}
        in_room = sum(1 for n in soak.nodes if n.replica is not None)
        missing = [c for c in self.sent_chats if c not in soak.chats_seen]
        heard = {
            name: bool(lee.audio.meters.get(who.node_id) and lee.audio.meters[who.node_id].speaking)
            for name, who in (("Hana", hana), ("Sam", sam))
        }
        links_up = all(sam.node_id in n.mesh.links for n in (hana, lee))
        print(
            f"{seconds:.0f} s: {self.joins} listeners joined, {self.leaves} left, "
            f"{self.actions} host actions, {len(self.sent_chats)} chat lines, {self.cuts} link "
            f"cuts, {self.failures} refused or failed"
        )
        print(f"state hashes equal on {in_room} nodes: {len(hashes) == 1}")
        print(f"chat lines the host never saw: {len(missing)}")
        print(f"Lee still hears: {heard}; Sam linked again after the cuts: {links_up}")
        mbs = ", ".join(f"{m:.0f}" for _, m in self.memory)
        print(f"memory (MB, every 10 s): {mbs}; slope {slope(self.memory):+.2f} MB/min")
        half = self.memory[len(self.memory) // 2 :]
        print(f"slope over the second half: {slope(half):+.2f} MB/min")
        return len(hashes) == 1 and not missing and all(heard.values()) and links_up


async def run(seconds: float, churn_s: float) -> int:
    soak = Soak()
    hana = await soak.node("Hana", "tone:440")
    await hana.host("Soak")
    sam = await soak.node("Sam", "tone:660")
    lee = await soak.node("Lee")
    for member in (sam, lee):
        await member.join(hana.join_addresses[0])
    await until(lambda: hana.replica is not None and len(hana.replica.state.members) == 3)
    await hana.request(Action(ActionKind.INVITE_SPEAKER, sam.node_id))
    await until(lambda: sam.replica is not None and sam.replica.state.members[sam.node_id].invited)
    await sam.request(Action(ActionKind.ACCEPT_INVITE))
    soaked = Run(soak, hana, sam, lee, churn_s)
    start = time.monotonic()
    next_churn = next_memory = start
    next_cut = start + 5
    tick = 0
    while (now := time.monotonic()) - start < seconds:
        tick += 1
        await soaked.tick(tick)
        if now >= next_churn:
            next_churn += churn_s
            await soaked.churn(now)
        if now >= next_cut:
            next_cut += 60
            soaked.cut()
        if now >= next_memory:
            next_memory += 10
            soaked.memory.append((now - start, rss_mb()))
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    await asyncio.sleep(3)  # let the last changes and chat lines arrive
    ok = soaked.report(seconds)
    for node in list(soak.nodes):
        await soak.stop(node)
    print("soak:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--churn", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    raise SystemExit(asyncio.run(run(args.seconds, args.churn)))


if __name__ == "__main__":
    main()
