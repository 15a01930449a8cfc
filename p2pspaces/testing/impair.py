"""An impairing cable: ``tc netem`` is missing here, so this does its job in user space.

A host's veth is taken off the LAN's bridge and joined to it again through this process, which
reads every Ethernet frame on one side (an ``AF_PACKET`` socket) and writes it on the other, in
both directions: each frame may be lost, is held for a delay with jitter (uniform, so frames
overtake each other as with netem), may jump the queue (reordering) and may be duplicated.
Everything the host sends or receives passes through it: mDNS, the signaling TCP, ICE, DTLS,
SCTP and RTP.  Segmentation offloads must be off on both veths (the caller runs ethtool) so that
frames stay within the MTU.

Run inside the bridge's namespace::

    python3 -m p2pspaces.testing.impair HOST_SIDE LAN_SIDE \
        --loss 5 --delay 40 --jitter 20 --reorder 1

and stopped with SIGTERM; it prints its counts on the way out.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import selectors
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.audio.opus import Pcm

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
FRAME_MAX = 65535


@dataclass(frozen=True, slots=True)
class Impairment:
    """What the cable does to each frame, each way (percentages and milliseconds)."""

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: float = 0.0
    duplicate: float = 0.0

    def argv(self) -> list[str]:
        """This impairment as the cable's command-line options."""
        return [
            *("--loss", str(self.loss), "--delay", str(self.delay_ms)),
            *("--jitter", str(self.jitter_ms), "--reorder", str(self.reorder)),
            *("--duplicate", str(self.duplicate)),
        ]

    def __str__(self) -> str:
        parts = []
        if self.loss:
            parts.append(f"{self.loss:g}% loss")
        if self.delay_ms or self.jitter_ms:
            parts.append(f"{self.delay_ms:g} ± {self.jitter_ms:g} ms delay")
        if self.reorder:
            parts.append(f"{self.reorder:g}% reordered")
        if self.duplicate:
            parts.append(f"{self.duplicate:g}% duplicated")
        return ", ".join(parts) or "none"


@dataclass
class Counts:
    frames: int = 0
    lost: int = 0
    reordered: int = 0
    duplicated: int = 0
    too_big: int = 0


@dataclass(order=True)
class Due:
    at: float
    order: int
    out: socket.socket = field(compare=False)
    frame: bytes = field(compare=False)


def open_side(interface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return sock


def run(host_side: str, lan_side: str, impairment: Impairment, seed: int | None) -> Counts:
    rng = random.Random(seed)
    sides = {host_side: open_side(host_side), lan_side: open_side(lan_side)}
    other = {sides[host_side]: sides[lan_side], sides[lan_side]: sides[host_side]}
    selector = selectors.DefaultSelector()
    for sock in sides.values():
        selector.register(sock, selectors.EVENT_READ)
    queue: list[Due] = []
    counts = Counts()
    order = 0
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def hold(out: socket.socket, frame: bytes, now: float) -> None:
        nonlocal order
        order += 1
        if rng.random() * 100 < impairment.reorder:
            counts.reordered += 1
            delay = 0.0  # jumps ahead of everything held
        else:
            spread = rng.uniform(-impairment.jitter_ms, impairment.jitter_ms)
            delay = max(0.0, impairment.delay_ms + spread) / 1000
        heapq.heappush(queue, Due(now + delay, order, out, frame))

    while not stopping:
        now = time.monotonic()
        while queue and queue[0].at <= now:
            due = heapq.heappop(queue)
            try:
                due.out.send(due.frame)
            except OSError:
                counts.too_big += 1
        timeout = max(0.0, queue[0].at - now) if queue else 0.5
        for key, _ in selector.select(timeout):
            side = key.fileobj
            if not isinstance(side, socket.socket):
                continue
            while True:
                try:
                    frame, address = side.recvfrom(FRAME_MAX)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING:
                    continue  # our own writes on this side
                counts.frames += 1
                if rng.random() * 100 < impairment.loss:
                    counts.lost += 1
                    continue
                now = time.monotonic()
                hold(other[side], frame, now)
                if rng.random() * 100 < impairment.duplicate:
                    counts.duplicated += 1
                    hold(other[side], frame, now)
    return counts


def offsets(recording: Pcm, source: Pcm, chunk_s: float = 2.0) -> list[tuple[float, float]]:
    """(recording time, delay) of each recognisable chunk: where in the looped source the chunk
    comes from, taken from where it lands in the recording, in seconds modulo the loop."""
    size = int(chunk_s * SAMPLE_RATE)
    # A looped clip is played padded to whole 20 ms frames.
    padded = np.concatenate([source, np.zeros(-len(source) % FRAME_SAMPLES, dtype=source.dtype)])
    loop = len(padded)
    doubled = np.concatenate([padded, padded])
    found: list[tuple[float, float]] = []
    for start in range(0, len(recording) - size, size):
        piece = recording[start : start + size]
        if rms_dbfs(piece) < -45:
            continue
        alignment = align(doubled, piece)
        if alignment.correlation < 0.5:
            continue
        delay = (start - alignment.lag) % loop
        if found:  # unwrap next to the first one
            first = found[0][1] * SAMPLE_RATE
            delay += round((first - delay) / loop) * loop
        found.append((start / SAMPLE_RATE, delay / SAMPLE_RATE))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host_side")
    parser.add_argument("lan_side")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of frames lost")
    parser.add_argument("--delay", type=float, default=0.0, help="ms each frame is held")
    parser.add_argument("--jitter", type=float, default=0.0, help="± ms around the delay")
    parser.add_argument("--reorder", type=float, default=0.0, help="percent sent at once")
    parser.add_argument("--duplicate", type=float, default=0.0, help="percent sent twice")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args()
    impairment = Impairment(args.loss, args.delay, args.jitter, args.reorder, args.duplicate)
    counts = run(args.host_side, args.lan_side, impairment, args.seed)
    print(json.dumps(counts.__dict__), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
