#!/usr/bin/env python3
"""Joining and hearing through a bad link, one impairment at a time (needs root: namespaces).

Two hosts on a bridged LAN of network namespaces; the listener's host reaches the bridge through
the impairing cable of p2pspaces/testing/impair.py (netem's job in user space: every frame, both
ways).
For each impairment: the join time (a node already running is told to join by address; the
time to the signed snapshot), repeated, and then a listener records the host's looped speech:
the per-second correlation with the source (median and 10th percentile) and how far the delay
moved from the start to the end of the recording (creep).  The first row, no impairment, is the
baseline of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from p2pspaces.audio.analysis import chunk_correlations
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.impair import Impairment, offsets
from p2pspaces.testing.lan import Lan, NodeProcess, netns_unavailable
from p2pspaces.testing.signals import speech

CASES = (
    Impairment(),
    Impairment(loss=5),
    Impairment(delay_ms=40, jitter_ms=20),
    Impairment(delay_ms=40, reorder=1),
    Impairment(duplicate=1),
    Impairment(loss=5, delay_ms=40, jitter_ms=20, reorder=1, duplicate=1),
)


def one_case(impairment: Impairment, work: Path, joins: int, listen_s: float) -> str:
    source_path = speech(work / "speech.wav")
    source = load_audio(source_path)
    with Lan(2) as lan:
        lan.impair(1, impairment)
        hana = lan.headless(
            0, work, "Hana", "--host", "Bad link", "--input", f"file:{source_path}?loop",
            "--output", "none", "--no-web",
        )  # fmt: skip
        nodes: list[NodeProcess] = [hana]
        try:
            port = hana.wait_for("ready")["port"]
            hana.wait_for("joined")
            address = f"{lan.address(0)}:{port}"
            ann = lan.headless(1, work, "Ann", "--input", "none", "--output", "none")
            nodes.append(ann)
            ann.wait_for("ready")
            times, failed = [], 0
            for _ in range(joins):
                started = time.monotonic()
                ann.send(cmd="join", room=address)
                try:
                    ann.wait_for("joined", within=30)
                except AssertionError:
                    failed += 1
                    continue
                times.append(time.monotonic() - started)
                ann.send(cmd="leave")
                ann.wait_for("left", within=15)
                time.sleep(0.5)
            recording_path = work / "bob.wav"
            bob = lan.headless(
                1, work, "Bob", "--join", address, "--input", "none",
                "--output", f"file:{recording_path}",
            )  # fmt: skip
            nodes.append(bob)
            bob.wait_for("joined", within=30)
            time.sleep(listen_s)
        finally:
            for node in reversed(nodes):
                node.stop()
            counts = lan.cable_counts()
    recording = load_audio(recording_path)
    scores = sorted(chunk_correlations(recording, source))
    delays = offsets(recording, source)
    creep = "n/a"
    if len(delays) >= 6:
        moved = statistics.median(d for _, d in delays[-3:]) - statistics.median(
            d for _, d in delays[:3]
        )
        creep = f"{1000 * moved:+.0f} ms"
    join = (
        f"{statistics.median(times):.2f} s ({min(times):.2f}..{max(times):.2f})" if times else "-"
    )
    quality = f"{statistics.median(scores):.2f} (p10 {scores[len(scores) // 10]:.2f})"
    cable = counts[0] if counts else {}
    return (
        f"{impairment!s:<56} {join:<22} {failed}/{joins}   {quality:<18} {creep:>8}   "
        f"{cable.get('lost', 0)}/{cable.get('frames', 0)} lost"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=5, help="joins timed per impairment")
    parser.add_argument("--seconds", type=float, default=30.0, help="speech recorded per case")
    parser.add_argument("--cases", type=int, nargs="+", help="run only these rows (0 = none)")
    args = parser.parse_args()
    reason = netns_unavailable()
    if reason is not None:
        sys.exit(f"bench_impaired needs network namespaces: {reason}")
    print(
        f"listener behind an impairing cable (both ways); {args.joins} joins by address each, "
        f"then {args.seconds:.0f} s of looped speech recorded"
    )
    print(
        f"{'impairment':<56} {'join (median, min..max)':<22} failed  "
        f"{'speech corr. (1 s)':<18} {'creep':>8}   cable"
    )
    for index, impairment in enumerate(CASES):
        if args.cases is not None and index not in args.cases:
            continue
        with tempfile.TemporaryDirectory(prefix="bench-impaired-") as tmp:
            print(one_case(impairment, Path(tmp), args.joins, args.seconds), flush=True)


if __name__ == "__main__":
    main()
