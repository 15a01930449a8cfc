#!/usr/bin/env python3
"""Run every benchmark and write docs/BENCHMARKS.md: each script's figures as it printed them
(each compares against its baseline in the same run: plain aiortc, Mumble when
``../shared/tools/mumble-baseline`` is installed, the node itself without the feature), the
machine, the date and how long each took.

    python3 scripts/bench_all.py [--quick] [--only NAME ...] [--out docs/BENCHMARKS.md]

``--quick`` runs fewer repetitions (for trying the script; the report says so).  The benchmarks
run one after another, never together: on a 2-core machine they would distort each other.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MUMBLE = ROOT.parent / "shared" / "tools" / "mumble-baseline" / "run.sh"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    what: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    timeout_s: float = 1800


BENCHES = (
    Bench(
        "latency",
        "Mouth-to-ear delay",
        "Frame handed to the speaker's pipeline to the same audio leaving the listener's "
        "playout, two processes on loopback, each run's steady state; plain aiortc and Mumble "
        "(if installed) in the same session.",
        ("bench_latency.py", "--runs", "10", "--mumble-runs", "3"),
        ("bench_latency.py", "--runs", "3", "--mumble-runs", "1", "--seconds", "8"),
    ),
    Bench(
        "latency-jitter",
        "Mouth-to-ear with 20 ms of injected jitter",
        "The same with a random 0-20 ms delay on every packet the listener receives: the "
        "jitter buffer absorbs it and the delay does not creep.",
        ("bench_latency.py", "--runs", "3", "--jitter-ms", "20", "--seconds", "20", "--no-aiortc"),
        ("bench_latency.py", "--runs", "1", "--jitter-ms", "20", "--seconds", "10", "--no-aiortc"),
    ),
    Bench(
        "fanout",
        "Speaker CPU per listener",
        "One speaker sending to N real aiortc peers: p2pspaces' direct fan-out (encode once, "
        "our RTP header, straight to DTLS) against an encoded track per connection (aiortc "
        "packetizing) and one encoder per connection (aiortc's default), in the same run.",
        ("bench_fanout.py",),
        ("bench_fanout.py", "--counts", "1,8", "--window", "4"),
    ),
    Bench(
        "room",
        "How many listeners one room holds",
        "A host and a speaker (a tone) in their own processes, listener nodes joining one at a "
        "time from farm processes (100 each, every listener its own keys, connections and "
        "loopback address): CPU, memory, the stream each listener got, join times and a host "
        "action's reach at 50, 100, 200 and 400 listeners, then where the speaker's and the "
        "host's time goes.",
        ("bench_room.py", "--profile"),
        ("bench_room.py", "--sizes", "20,40", "--window", "5"),
    ),
    Bench(
        "relays",
        "Listeners relaying to listeners",
        "One relay hop with real nodes (the delay it adds against the direct hop, the relay's "
        "CPU per listener behind it), then the authority's plan of rooms of 1,000 and 10,000 "
        "listeners in memory (review times, tiers, re-parenting after a relay dies).",
        ("bench_relay.py",),
        ("bench_relay.py", "--children", "1,8", "--runs", "1", "--seconds", "4", "--sizes", "1000"),
    ),
    Bench(
        "room-relays",
        "A starved speaker, with and without relays",
        "The speaker held to 15% of one core (a cgroup, root): listeners who got its whole "
        "stream at 60, 100 and 150 listeners when every listener hears it straight (relays "
        "off: --direct-listeners 10000), then (next section) when 20 do and the rest hear it "
        "through relays.",
        (
            "bench_room.py",
            *("--speaker-cpu", "15", "--sizes", "60,100,150", "--direct-listeners", "10000"),
        ),
        (
            "bench_room.py",
            *("--speaker-cpu", "15", "--sizes", "40", "--window", "5"),
            *("--direct-listeners", "10000"),
        ),
    ),
    Bench(
        "room-relays-on",
        "A starved speaker, relays on",
        "The same run with --direct-listeners 20.",
        (
            "bench_room.py",
            "--speaker-cpu",
            "15",
            "--sizes",
            "60,100,150",
            "--direct-listeners",
            "20",
        ),
        (
            "bench_room.py",
            "--speaker-cpu",
            "15",
            "--sizes",
            "40",
            "--window",
            "5",
            "--direct-listeners",
            "10",
        ),
    ),
    Bench(
        "impaired",
        "Through a bad link",
        "A listener behind an impairing cable (p2pspaces/testing/impair.py, both ways; network "
        "namespaces, so root): join time by address and the speech it hears (per-second "
        "correlation, delay creep) under each impairment, no impairment first as the baseline.",
        ("bench_impaired.py",),
        ("bench_impaired.py", "--joins", "2", "--seconds", "10", "--cases", "0", "5"),
    ),
    Bench(
        "core",
        "Signed updates per second",
        "The pure room core on one core: updates issued and verified per second in rooms of "
        "30 and 1,000 members, against bare Ed25519 verification in the same run.",
        ("bench_core.py",),
        ("bench_core.py", "--updates", "1000"),
    ),
    Bench(
        "join",
        "Joining",
        "Time to join a room on loopback against a plain aiortc connection set up in the same run.",
        ("bench_join.py",),
        ("bench_join.py", "--joins", "5", "--listeners", "10", "--idle", "3"),
    ),
    Bench(
        "space",
        "The Space in motion",
        "Host action to every member applied, and takeover when the host's laptop dies.",
        ("bench_space.py",),
        ("bench_space.py", "--members", "6", "--actions", "10", "--takeovers", "2"),
    ),
    Bench(
        "flood",
        "An mDNS flood",
        "Memory of a node flooded with signed and forged adverts, against the same node idle.",
        ("bench_flood.py",),
        ("bench_flood.py", "--runs", "1", "--valid", "2000", "--forged", "2000"),
    ),
    Bench(
        "app",
        "The terminal app",
        "Start-up to the first screen and CPU while a room idles, against --plain.",
        ("bench_app.py",),
        ("bench_app.py", "--runs", "2", "--idle", "5"),
    ),
    Bench(
        "soak",
        "Soak and churn",
        "Two speakers for 10 minutes while listeners join and leave every 3 s, a host action "
        "and a chat line every second, a speaker's link cut every minute: hashes, chat, audio, "
        "links at the end, and the memory slope.",
        ("soak.py", "--seconds", "600"),
        ("soak.py", "--seconds", "60"),
    ),
    Bench(
        "web",
        "Browser guests",
        "A guest page's mouth-to-ear against a node listener in the same run, the gateway's "
        "CPU and memory per guest at 1, 10 and 30 pages, and page-to-audio time.",
        ("bench_web.py", "--runs", "3"),
        ("bench_web.py", "--runs", "1", "--seconds", "5", "--guests", "1", "5"),
    ),
    Bench(
        "engines",
        "Browser engines",
        "One guest page per engine (Chromium, Firefox), each with its default settings: page "
        "open to in the room and to first audio, and the guest's mouth-to-ear against a node "
        "listener in the same windows.",
        ("bench_engines.py", "--runs", "3"),
        ("bench_engines.py", "--runs", "1", "--seconds", "5"),
    ),
    Bench(
        "processing",
        "Voice processing",
        "Echo cancellation, noise suppression and AGC on a speaking node's microphone, in % "
        "of a core, beside the Opus encoder it feeds.",
        ("bench_processing.py", "--runs", "5"),
        ("bench_processing.py", "--runs", "2", "--seconds", "5"),
    ),
)


def machine() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in ("aiortc", "zeroconf", "aiohttp", "textual"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {', '.join(versions)}",
        f"- Mumble baseline: {'installed' if MUMBLE.exists() else 'not installed (skipped)'}",
        f"- Commit {commit or 'unknown'}",
    ]


def run(bench: Bench, quick: bool) -> tuple[str, float, int]:
    argv = [sys.executable, str(HERE / (bench.quick if quick else bench.full)[0])]
    argv += list((bench.quick if quick else bench.full)[1:])
    print(f"== {bench.name}: {' '.join(argv[1:])}", flush=True)
    start = time.monotonic()
    try:
        done = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=bench.timeout_s, check=False
        )
        output, status = done.stdout, done.returncode
        if status != 0:
            output += f"\n(exit status {status})\n{done.stderr[-2000:]}"
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        output += f"\n(stopped after {bench.timeout_s:.0f} s)"
        status = -1
    took = time.monotonic() - start
    print(output, flush=True)
    return output, took, status


def _merged(old: str, new: list[str], now: str) -> list[str]:
    """The existing report with the sections just run replaced (and dated), the rest kept."""

    def sections(text: str) -> tuple[str, dict[str, str]]:
        head, *parts = text.split("\n## ")
        return head, {part.split("\n", 1)[0]: part for part in parts}

    head, kept = sections(old)
    _, fresh = sections("\n".join(new))
    for title, part in fresh.items():
        body = part.split("\n", 1)[1]
        kept[title] = (
            f"{title}\n\n(rerun on its own on {now}; the rest of the report is older)\n{body}"
        )
    order = [b.title for b in BENCHES]
    titles = sorted(kept, key=lambda t: order.index(t) if t in order else len(order))
    return [head.rstrip("\n"), "", *(f"## {kept[t].rstrip()}\n" for t in titles)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES], default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python3 scripts/bench_all.py{' --quick' if args.quick else ''}` on {now}"
        + (" (quick: fewer repetitions than the full report)." if args.quick else "."),
        "Each section is one script's output as printed; each script compares against its",
        "baseline in the same run and repeats its measurement where the machine is noisy",
        "(the spread is in its output). The scripts ran one after another, never together.",
        "",
        *machine(),
        "",
    ]
    failures = 0
    for bench in BENCHES:
        if args.only is not None and bench.name not in args.only:
            continue
        output, took, status = run(bench, args.quick)
        failures += status != 0
        command = " ".join(bench.quick if args.quick else bench.full)
        lines += [
            f"## {bench.title}",
            "",
            bench.what,
            "",
            f"`python3 scripts/{command}` ({took:.0f} s)",
            "",
            "```",
            output.rstrip(),
            "```",
            "",
        ]
    if args.only is not None and args.out.exists():
        lines = _merged(args.out.read_text(), lines, now)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"report written to {args.out}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
