"""Memory of a node flooded with mDNS adverts: 20,000 validly signed ones from fresh keys and
20,000 forged ones, sent on loopback; then ``rooms`` and a join of the real room.

    python3 scripts/bench_flood.py [--runs 3] [--valid 20000] [--forged 20000] [--tree DIR]

``--tree DIR`` runs the nodes from another checkout (e.g. the commit before the caps) to
compare; each run prints RSS before and after, its growth, the rooms listed, and the join time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from p2pspaces.testing.flood import run_flood


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--valid", type=int, default=20_000)
    parser.add_argument("--forged", type=int, default=20_000)
    parser.add_argument("--tree", type=Path, default=None, help="run the nodes from this tree")
    args = parser.parse_args()
    env = None
    if args.tree is not None:
        env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
        os.chdir(tempfile.gettempdir())  # `python -m` puts the working folder first on the path
    growth = []
    header = ("run", "RSS before", "after", "growth", "rooms", "real", "join")
    print("{:>3} {:>11} {:>8} {:>8} {:>6} {:>5} {:>8}".format(*header))
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_flood(Path(tmp), args.valid, args.forged, env)
        growth.append(r.rss_after_mb - r.rss_before_mb)
        real = "yes" if r.real_room_listed else "no"
        join = f"{r.join_s * 1000:.0f} ms" if r.join_s < float("inf") else "failed"
        print(
            f"{run:>3} {r.rss_before_mb:>8.1f} MB {r.rss_after_mb:>5.1f} MB {growth[-1]:>5.1f} MB "
            f"{r.rooms_listed:>6} {real:>5} {join:>8}"
        )
    low, high = min(growth), max(growth)
    print(f"growth: median {statistics.median(growth):.1f} MB, spread {low:.1f}-{high:.1f} MB")


if __name__ == "__main__":
    main()
