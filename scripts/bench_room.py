#!/usr/bin/env python3
"""How many listeners one room holds on this machine, with one speaker talking.

The host (the room's authority) and one speaker (invited on stage, speaking a tone) are headless
nodes, each in its own process.  The listeners are real nodes, many to a process ("farms", run by
this script with --farm), each with its own identity and its own WebRTC connections (signed
handshake, DTLS, SRTP, the control channel, the snapshot, heartbeats, signed contacts); they join
by address (no mDNS: hundreds of responders on one machine would measure multicast, not the
room).  A listener skips playout: it counts every RTP packet from the speaker, notes lost
sequence numbers, and decodes one packet a second to check it carries the tone.

Listeners join one at a time up to each size in --sizes; at each size the script waits for the
room to settle, then reports over a window: the speaker's and the host's CPU (% of one core),
their memory per listener, every farm's CPU, how many listeners received the whole stream, the
join times of the last listeners, the time from a host action (a new title) to the last
listener applying it, and the links the speaker and the host dropped (for silence, or at all).
--speaker-cpu PCT holds the speaker to that share of one core (a cgroup; root): an overloaded
speaker, to see that the room degrades (late or lost audio) without a storm of dropped and
redialed links.  --direct-listeners N lets N listeners hear the speaker straight and the
rest through relays (listeners passing it on, checked by a signature on each packet).
--profile DIR runs the speaker under cProfile (slower) and writes its
profile there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchkit import LOOPBACK, Headless, cpu_seconds

from p2pspaces.audio.devices import NullSink, SilentSource
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.audio.opus import Decoder
from p2pspaces.audio.relay import RelayPath
from p2pspaces.core.events import Event, StateChanged
from p2pspaces.core.identity import Identity
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.node.relaying import RelayWatch, RoomRelays
from p2pspaces.testing.cpu import CpuShare, cpu_share_unavailable

PACKETS_PER_S = 50
CHECK_EVERY = 50
"""A listener decodes one packet in this many and checks it carries the tone."""
TONE_DBFS = -40.0

# --- the farm: many listeners in one process ----------------------------------------------


class Ear(AudioEngine):
    """A listener's audio side that counts and checks packets instead of playing them."""

    def __init__(self, me: bytes) -> None:
        super().__init__(me, SilentSource(), NullSink(), time.monotonic, lambda *_: None)
        self.packets = 0
        self.lost = 0
        self.toned = 0
        self.untoned = 0
        self.first_at: float | None = None
        self._last: dict[bytes, int] = {}
        self._decoder = Decoder()

    def start(self) -> None:
        """No capture and no playout."""

    async def stop(self) -> None:
        """Nothing runs."""

    async def on_rtp(self, peer: bytes, packet: Any, arrival_time_ms: int = 0) -> None:
        routed = await self.route(peer, packet)  # a relay passes packets on from here
        if routed is None:
            return
        peer, packet = routed
        self.heard_at[peer] = time.monotonic()  # what the node's relay watch reads
        self.packets += 1
        if self.first_at is None:
            self.first_at = time.monotonic()
        seq = packet.sequence_number
        last = self._last.get(peer)
        # A jump of more than 10 s is a new numbering (the stream moved between straight and
        # relayed, whose numbers differ), not a loss.
        if last is not None and 1 < (step := (seq - last) & 0xFFFF) < 500:
            self.lost += step - 1
        self._last[peer] = seq
        if self.packets % CHECK_EVERY == 0:
            pcm = self._decoder.decode(packet.payload).astype(np.float64)
            level = 20 * math.log10(max(1e-9, float(np.sqrt(np.mean(pcm**2))) / 32768))
            if level > TONE_DBFS:
                self.toned += 1
            else:
                self.untoned += 1


class Listener(Node):
    """A real node whose events are noted (when each state seq was applied), not queued."""

    def __init__(self, index: int) -> None:
        # An address of its own (all of 127/8 is this host): signaling counts attempts per
        # address, and at a real event every listener has its own.
        address = f"127.1.{index // 250}.{index % 250 + 1}"
        config = NodeConfig(f"L{index:03d}", interface=address, mdns=False)
        super().__init__(Identity.generate(), config)
        self.ear = Ear(self.node_id)
        self.ear.allowed = self.session.may_speak
        self.relays = self.ear.relay = RelayPath(RoomRelays(self.session, self.identity))
        self.audio = self.mesh.media = self.ear
        self.voice.watch = RelayWatch(self.session, self.ear.heard_at)
        self.applied: dict[int, float] = {}
        self.joined_at = math.inf

    def emit(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self.applied[event.state.seq] = time.monotonic()
            if len(self.applied) > 64:
                del self.applied[min(self.applied)]

    @property
    def state_hash(self) -> str:
        replica = self.replica
        return replica.hash().hex() if replica is not None else ""


async def farm() -> None:
    """Serve the orchestrator's requests (JSON lines on stdin, one JSON answer each)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    listeners: list[Listener] = []
    window = {"packets": 0}

    def answer(**fields: Any) -> None:
        print(json.dumps(fields), flush=True)

    while line := await reader.readline():
        request = json.loads(line)
        op = request["op"]
        if op == "add":
            listener = Listener(request["index"])
            started = time.monotonic()
            try:
                await listener.start()
                await listener.join(request["address"], wait=30)
            except Exception as exc:
                answer(error=f"{type(exc).__name__}: {exc}")
                await listener.stop()
                continue
            listener.joined_at = time.monotonic()
            listeners.append(listener)
            answer(join_s=time.monotonic() - started, started=started)
        elif op == "stats":
            packets = [item.ear.packets for item in listeners]
            answer(
                packets=packets,
                lost=sum(item.ear.lost for item in listeners),
                toned=sum(item.ear.toned for item in listeners),
                untoned=sum(item.ear.untoned for item in listeners),
                first_audio=[
                    (item.ear.first_at or math.inf) - item.joined_at for item in listeners
                ],
                members=[
                    len(item.replica.state.members) if item.replica else 0 for item in listeners
                ],
                relayed=sum(item.relays.plan.parent() is not None for item in listeners),
                forwarded=sum(item.relays.forwarded for item in listeners),
                refused=sum(item.ear.refused_packets for item in listeners),
            )
            window["packets"] = sum(packets)
        elif op == "applied":
            seq = request["seq"]
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if all(seq in item.applied for item in listeners):
                    break
                await asyncio.sleep(0.05)
            times = [item.applied.get(seq) for item in listeners]
            answer(
                last=max((t for t in times if t is not None), default=None),
                missing=times.count(None),
                hashes=sorted({item.state_hash for item in listeners}),
            )
        elif op == "stop":
            await asyncio.gather(*(item.stop() for item in listeners), return_exceptions=True)
            answer(stopped=len(listeners))
            return


# --- the orchestrator ---------------------------------------------------------------------


class Farm:
    """A farm process and its request/answer pipe."""

    def __init__(self, index: int, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--farm"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.index = index
        self.count = 0
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(json.loads(line))

    def ask(self, within: float = 60.0, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        try:
            return self._answers.get(timeout=within)
        except queue.Empty:
            raise RuntimeError(f"farm {self.index} did not answer {request['op']}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError):
                self.ask(op="stop", within=60)
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Bench:
    """The host, the speaker and the farms, grown one listener at a time."""

    def __init__(self, work: Path, per_farm: int, direct: int | None = None) -> None:
        self.work = work
        self.per_farm = per_farm
        self.direct = direct
        self.farms: list[Farm] = []
        self.joins: list[float] = []
        self.listeners = 0
        self.nodes: list[Headless] = []

    def start(self) -> None:
        """The host, then the speaker on stage."""
        work = self.work
        quiet = ("--input", "none", "--output", "none", "--no-web", "-v")
        self.host = Headless(
            *("--name", "Host", "--home", str(work / "host"), "--host", "Big room"),
            *quiet,
            *(("--direct-listeners", str(self.direct)) if self.direct else ()),
            log=work / "host.log",
        )
        self.nodes.append(self.host)
        ready = self.host.wait_for("ready")
        self.host.wait_for("joined")
        self.address = f"{LOOPBACK}:{ready['port']}"
        self.speaker = Headless(
            "--name",
            "Sam",
            "--home",
            str(work / "speaker"),
            "--join",
            self.address,
            "--input",
            "tone",
            "--output",
            "none",
            "--no-web",
            "-v",
            log=work / "speaker.log",
        )
        self.nodes.append(self.speaker)
        sam = self.speaker.wait_for("ready")["node"]
        self.speaker.wait_for("joined")
        self.host.send(cmd="request", action="invite_speaker", target=sam)
        self.speaker.wait("state")
        self.speaker.send(cmd="request", action="accept_invite")
        self.seq = self._wait_state(
            lambda state: any(m["id"] == sam and m["role"] == "speaker" for m in state["members"])
        )
        time.sleep(1)
        self.base_mb = {"speaker": self.speaker.rss_mb(), "host": self.host.rss_mb()}

    def _wait_state(self, done: Any, within: float = 30.0) -> int:
        deadline = time.monotonic() + within
        while True:
            _, state = self.host.wait("state", within=max(0.1, deadline - time.monotonic()))
            if done(state):
                return int(state["seq"])

    def grow(self, size: int) -> None:
        """Listeners join one after another until there are ``size``."""
        shown = time.monotonic()
        while self.listeners < size:
            farm_index = self.listeners // self.per_farm
            if farm_index == len(self.farms):
                self.farms.append(Farm(farm_index, self.work / f"farm{farm_index}.log"))
            answer = self.farms[farm_index].ask(
                op="add", index=self.listeners, address=self.address
            )
            if "error" in answer:
                raise RuntimeError(
                    f"listener {self.listeners + 1} could not join: {answer['error']}"
                )
            self.joins.append(answer["join_s"])
            self.listeners += 1
            if time.monotonic() - shown > 10:
                print(f"  ... {self.listeners} listeners in", flush=True)
                shown = time.monotonic()

    def measure(self, window: float, settle: float) -> dict[str, Any]:
        time.sleep(settle)
        for farm in self.farms:
            farm.ask(op="stats")
        pids = {"speaker": self.speaker.proc.pid, "host": self.host.proc.pid}
        pids |= {f"farm{f.index}": f.proc.pid for f in self.farms}
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        start = time.monotonic()
        counts_before = [farm.ask(op="stats")["packets"] for farm in self.farms]
        time.sleep(window)
        stats = [farm.ask(op="stats") for farm in self.farms]
        spent = time.monotonic() - start
        cpu = {name: 100 * (cpu_seconds(pid) - before[name]) / spent for name, pid in pids.items()}
        received = [
            now - then
            for stat, old in zip(stats, counts_before, strict=True)
            for now, then in zip(stat["packets"], old, strict=True)
        ]
        expected = PACKETS_PER_S * spent
        # The host's action: a new title; then when did the last listener apply it?
        sent = time.monotonic()
        self.host.send(cmd="request", action="set_title", text=f"Big room {self.listeners}")
        title = f"Big room {self.listeners}"
        host_state: dict[str, Any] = {}

        def retitled(state: dict[str, Any]) -> bool:
            host_state.update(state)
            return bool(state["title"] == title)

        seq = self._wait_state(retitled)
        applied = [farm.ask(op="applied", seq=seq) for farm in self.farms]
        missing = sum(a["missing"] for a in applied)
        last = max((a["last"] for a in applied if a["last"] is not None), default=math.nan)
        hashes = {h for answer in applied for h in answer["hashes"]}
        first_audio = [t for stat in stats for t in stat["first_audio"]]
        return {
            "cpu": cpu,
            "speaker_mb": self.speaker.rss_mb(),
            "host_mb": self.host.rss_mb(),
            "base_mb": self.base_mb,
            "full": sum(1 for r in received if r >= 0.95 * expected),
            "silent": sum(1 for r in received if r == 0),
            "median_rate": statistics.median(received) / spent,
            "lost": sum(s["lost"] for s in stats),
            "toned": sum(s["toned"] for s in stats),
            "untoned": sum(s["untoned"] for s in stats),
            "action_s": last - sent if not missing else math.nan,
            "action_missing": missing,
            "agree": hashes == {host_state["hash"]},
            "first_audio": first_audio,
            "drops": self.drops(),
            "relayed": sum(s["relayed"] for s in stats),
            "forwarded": sum(s["forwarded"] for s in stats),
            "refused": sum(s["refused"] for s in stats),
        }

    def drops(self) -> dict[str, tuple[int, int]]:
        """Links each of the speaker and the host dropped so far: (for silence, in all)."""
        counts = {}
        for who in ("speaker", "host"):
            lines = (self.work / f"{who}.log").read_text(errors="replace").splitlines()
            down = [line for line in lines if "mesh: link down with" in line]
            counts[who] = (sum("silent for" in line for line in down), len(down))
        return counts

    def stop(self) -> None:
        for farm in self.farms:
            farm.stop()
        for node in reversed(self.nodes):
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200,400", help="listener counts to report")
    parser.add_argument("--per-farm", type=int, default=100, help="listeners per farm process")
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per size")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the speaker and the host with py-spy after the 200-listener window (or "
        "the last one, if smaller) and print where their time goes",
    )
    parser.add_argument("--logs", type=Path, help="keep the nodes' logs (-v) in this folder")
    parser.add_argument(
        "--speaker-cpu",
        type=float,
        metavar="PCT",
        help="hold the speaker to this share of one core once it is on stage (cgroup; root)",
    )
    parser.add_argument(
        "--direct-listeners",
        type=int,
        metavar="N",
        help="the host lets N listeners hear the speaker straight; the rest hear through "
        "relays (listeners passing it on); default: the node's own limit",
    )
    parser.add_argument("--farm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.farm:
        asyncio.run(farm())
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    # Profile where the machine still has room (on 2 cores, 200 listeners), not where it is
    # saturated: py-spy itself then stalls.
    profile_at = min((s for s in sizes if s >= 200), default=sizes[-1])
    print(
        f"one speaker (tone, 50 packets/s) and N listeners on loopback, listeners "
        f"{args.per_farm} to a process; CPU in % of one core ({os.cpu_count()} cores), "
        f"{args.window:.0f} s windows"
    )
    with tempfile.TemporaryDirectory(prefix="bench-room-") as tmp:
        work = args.logs or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        bench = Bench(work, args.per_farm, args.direct_listeners)
        rows = []
        with contextlib.ExitStack() as stack:
            if args.speaker_cpu is not None:
                if (why := cpu_share_unavailable()) is not None:
                    parser.error(f"--speaker-cpu: {why}")
                share = stack.enter_context(CpuShare(args.speaker_cpu))
            stack.callback(bench.stop)
            bench.start()
            if args.speaker_cpu is not None:
                share.add(bench.speaker.proc.pid)
                print(f"the speaker is held to {args.speaker_cpu:g}% of one core")
            for size in sizes:
                previous = bench.listeners
                bench.grow(size)
                figures = bench.measure(args.window, args.settle)
                joins = bench.joins[previous:]
                rows.append((size, figures, joins))
                report(size, figures, joins, bench.listeners)
                if args.profile and size == profile_at:
                    for who in (bench.speaker, bench.host):
                        where_time_goes(who.proc.pid, args.window, work)


def where_time_goes(pid: int, seconds: float, work: Path, top: int = 14) -> None:
    """Sample a process with py-spy and print the functions its time is spent in."""
    out = work / f"profile-{pid}.txt"
    argv = ["py-spy", "record", "--pid", str(pid), "--duration", str(round(seconds))]
    argv += ["--rate", "200", "--format", "raw", "--nonblocking", "--output", str(out)]
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=seconds + 120)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"\nno profile of {pid}: py-spy failed ({exc})")
        return
    own: dict[str, int] = {}
    within: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            within[frame] = within.get(frame, 0) + samples
    name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    who = name[name.index(b"--name") + 1].decode() if b"--name" in name else str(pid)
    print(f"\nwhere {who}'s time goes ({total} samples over {seconds:.0f} s, py-spy):")
    print("  self%  function")
    for frame, samples in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * samples / total:5.1f}  {frame}")
    print("  total%  function (ours and aiortc's, by time spent within)")
    ours = [f for f in within if "p2pspaces" in f or "aiortc" in f or "aioice" in f]
    for frame in sorted(ours, key=lambda f: -within[f])[:top]:
        print(f"  {100 * within[frame] / total:6.1f}  {frame}")


def report(size: int, f: dict[str, Any], joins: list[float], total: int) -> None:
    cpu = f["cpu"]
    farms = " ".join(f"{v:.0f}" for k, v in cpu.items() if k.startswith("farm"))
    print(f"\n{size} listeners")
    for who in ("speaker", "host"):
        grown = f[f"{who}_mb"] - f["base_mb"][who]
        print(
            f"  {who:<7} CPU {cpu[who]:5.1f}%   RSS {f[f'{who}_mb']:.0f} MB "
            f"(+{1000 * grown / size:.0f} KB per listener)"
        )
    print(f"  farms   CPU {farms} %")
    if f["relayed"]:
        print(
            f"  relays: {f['relayed']} listeners heard through a relay; "
            f"{f['forwarded']} packets passed on so far, {f['refused']} refused"
        )
    print(
        f"  stream: {f['full']}/{size} listeners got >= 95% of packets, {f['silent']} silent, "
        f"median {f['median_rate']:.1f} packets/s, {f['lost']} lost seq, "
        f"tone checks {f['toned']} ok / {f['untoned']} quiet"
    )
    print(
        f"  joins {len(joins)} (up to #{total}): median {statistics.median(joins):.2f} s, "
        f"p95 {pct(joins, 0.95):.2f} s, last {joins[-1]:.2f} s"
    )
    action = f"{1000 * f['action_s']:.0f} ms" if not math.isnan(f["action_s"]) else "not applied"
    print(
        f"  host action -> last listener applied: {action} "
        f"({f['action_missing']} missing); every listener's state hash equals the host's: "
        f"{'yes' if f['agree'] else 'NO'}"
    )
    drops = "; ".join(
        f"{who} {silent} for silence, {all_} in all" for who, (silent, all_) in f["drops"].items()
    )
    print(f"  links dropped so far: {drops}")
    first = [t for t in f["first_audio"] if math.isfinite(t)]
    if first:
        print(
            f"  joined -> first audio packet: median {statistics.median(first):.2f} s, "
            f"max {max(first):.2f} s ({len(f['first_audio']) - len(first)} never)"
        )


if __name__ == "__main__":
    main()
