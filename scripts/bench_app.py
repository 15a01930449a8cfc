"""The terminal app's cost: start-up to a drawn lobby, and CPU while a room idles, against
``--plain`` in the same run (both in a real terminal: tmux).

    python3 scripts/bench_app.py [--runs 5] [--idle 20]

Start-up: from launching ``p2pspaces start`` to the lobby on screen (the app) or the first
sentence printed (``--plain``).  Idle CPU: a host alone in its Space, no audio devices, CPU
time of the process over ``--idle`` seconds as a share of one core.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

from benchkit import cpu_seconds

SOCKET = f"p2ps-bench-{os.getpid()}"


def tmux(*args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", SOCKET, *args], capture_output=True, text=True, check=False
    )
    return done.stdout


def launch(session: str, extra: list[str], home: str) -> None:
    argv = [sys.executable, "-m", "p2pspaces", "start", "--interface", "127.0.0.1", "--name"]
    argv += ["Bench", "--home", home, "--input", "none", "--output", "none", *extra]
    script = shlex.join(argv) + "; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", "bash", "-c", script)


def wait_for(session: str, text: str, within: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        if text in tmux("capture-pane", "-p", "-J", "-t", session):
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"{text!r} never appeared")


def app_pid(session: str) -> int:
    shell = int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])
    children = subprocess.run(
        ["pgrep", "-P", str(shell)], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(children[0])


def one_run(mode: str, idle: float) -> tuple[float, float]:
    session = f"b{mode}{time.monotonic_ns() % 10**6}"
    extra = ["--plain"] if mode == "plain" else []
    marker = "Looking for Spaces" if mode == "plain" else "Spaces on this network"
    # The app's lobby says it is still looking when it is drawn; plain mode's first sentence.
    with tempfile.TemporaryDirectory() as home:
        started = time.monotonic()
        launch(session, extra, home)
        drawn = wait_for(session, marker) - started
        title = f"Idle {session}"
        if mode == "plain":
            tmux("send-keys", "-t", session, f"/host {title}", "Enter")
        else:
            tmux("send-keys", "-t", session, "h")
            wait_for(session, "Host a Space")
            tmux("send-keys", "-t", session, title, "Enter")
        wait_for(session, f"hosting '{title}'" if mode == "plain" else "On stage")
        pid = app_pid(session)
        time.sleep(2)
        before, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(idle)
        share = (cpu_seconds(pid) - before) / (time.monotonic() - t0)
        tmux("kill-session", "-t", session)
    return drawn, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"app": [], "plain": []}
    # A session that outlives the runs: when a server's last session closes it exits, and a
    # new session started at that moment can be lost with it.
    tmux("new-session", "-d", "-s", "keeper", "sleep 3600")
    try:
        for run in range(args.runs):
            for mode in ("app", "plain"):  # interleaved: both see the same machine noise
                results[mode].append(one_run(mode, args.idle))
                took, idle = results[mode][-1]
                print(f"run {run + 1} {mode:5}: drawn in {took:.2f} s, idle CPU {idle:.1%}")
    finally:
        tmux("kill-server")
    print()
    print("mode   start-up to screen (median, min-max)   idle CPU of one core (median, min-max)")
    for mode, rows in results.items():
        drawn = [r[0] for r in rows]
        share = [r[1] for r in rows]
        print(
            f"{mode:6} {statistics.median(drawn):.2f} s ({min(drawn):.2f}-{max(drawn):.2f})"
            f"                  {statistics.median(share):.1%} ({min(share):.1%}-{max(share):.1%})"
        )


if __name__ == "__main__":
    main()
