#!/usr/bin/env python3
"""How fast the Space moves, on loopback.

1. Action -> last member applied: a host and 19 members (20 real nodes in one process); the host
   changes the room (a title edit, a signed update) and we time until the last member has
   verified and applied it.  Median and p95 over the actions.
2. Host SIGKILL -> new authority accepted by all: separate ``p2pspaces start --headless``
   processes (host, co-host, members); the host is killed with SIGKILL and we time until every
   member reports the co-host as authority.  Heartbeats every 1 s, lease 3 s: the floor is
   about 2-3 s by design (a flaky laptop must not be dethroned).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import tempfile
import time
from pathlib import Path

from benchkit import LOOPBACK, Headless

from p2pspaces.core.events import StateChanged
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{label:44} median {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms   (n={len(ms)})"


async def applied_times(node: Node, seen: dict[int, float], news: asyncio.Event) -> None:
    while True:
        event = await node.events.get()
        if isinstance(event, StateChanged):
            seen.setdefault(event.state.seq, time.perf_counter())
            news.set()


async def action_latency(members: int, actions: int) -> None:
    nodes = [
        Node(Identity.generate(), NodeConfig(f"N{i:02d}", LOOPBACK)) for i in range(members + 1)
    ]
    host = nodes[0]
    for node in nodes:
        await node.start()
    room = await host.host("Bench space")
    for node in nodes[1:]:
        await node.join(room.hex())
    seen: list[dict[int, float]] = [{} for _ in nodes[1:]]
    news = asyncio.Event()
    watchers = [
        asyncio.ensure_future(applied_times(n, s, news))
        for n, s in zip(nodes[1:], seen, strict=True)
    ]
    await asyncio.sleep(2.0)
    results = []
    try:
        for index in range(actions):
            assert host.replica is not None
            seq = host.replica.state.seq + 1
            start = time.perf_counter()
            await host.request(Action(ActionKind.SET_TITLE, text=f"Bench space {index}"))
            async with asyncio.timeout(10):
                while not all(seq in s for s in seen):
                    news.clear()
                    await news.wait()
            results.append(max(s[seq] for s in seen) - start)
            await asyncio.sleep(0.05)
    finally:
        for watcher in watchers:
            watcher.cancel()
        for node in nodes:
            await node.stop()
    print(summary(f"host action -> last of {members} members applied", results))


def one_takeover(members: int, work: Path, run: int) -> float:
    def start(name: str, *extra: str) -> Headless:
        home = str(work / f"{run}-{name}")
        quiet = ("--input", "none", "--output", "none")
        return Headless("--name", name, "--home", home, *quiet, *extra)

    title = f"Takeover {run}"
    host = start("Host", "--host", title)
    host.wait("joined")
    cora = start("Cora", "--join", title)
    others = [start(f"M{i}", "--join", title) for i in range(members)]
    everyone = [cora, *others]
    try:
        cora_id = cora.wait("ready")[1]["node"]
        for proc in everyone:
            proc.wait("joined")
        host.send(cmd="request", action="invite_speaker", target=cora_id)
        cora.wait("state")
        time.sleep(0.5)
        cora.send(cmd="request", action="accept_invite")
        time.sleep(0.5)
        host.send(cmd="request", action="add_cohost", target=cora_id)
        for proc in everyone:
            while cora_id not in proc.wait("state")[1]["cohosts"]:
                pass
        time.sleep(2.0)  # links settle, heartbeats flow
        killed = time.monotonic()
        host.proc.send_signal(signal.SIGKILL)
        accepted = [proc.wait("authority", within=15, authority=cora_id)[0] for proc in others]
        return max(accepted) - killed
    finally:
        host.stop()
        for proc in everyone:
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=19)
    parser.add_argument("--actions", type=int, default=50)
    parser.add_argument("--takeover-members", type=int, default=4)
    parser.add_argument("--takeovers", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(action_latency(args.members, args.actions))
    with tempfile.TemporaryDirectory(prefix="p2ps-space-") as folder:
        times = [
            one_takeover(args.takeover_members, Path(folder), run) for run in range(args.takeovers)
        ]
    print(summary(f"host SIGKILL -> all {args.takeover_members} members follow the co-host", times))


if __name__ == "__main__":
    main()
