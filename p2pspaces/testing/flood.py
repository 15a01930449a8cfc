"""A flood of mDNS adverts on loopback: fresh keys with validly signed rooms, and forgeries.

Real multicast DNS packets (PTR, SRV, TXT and A records, built with zeroconf's own writer) sent
to 224.0.0.251:5353 on the loopback interface, as a hostile laptop on the LAN could send them.
Used by ``tests/net/test_flood.py`` and ``scripts/bench_flood.py``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Not re-exported for type checkers from zeroconf's top level: imported from where they live.
from zeroconf._dns import DNSAddress, DNSPointer, DNSService, DNSText
from zeroconf._protocol.outgoing import DNSOutgoing
from zeroconf.const import (
    _CLASS_IN,
    _CLASS_UNIQUE,
    _FLAGS_AA,
    _FLAGS_QR_RESPONSE,
    _TYPE_A,
    _TYPE_PTR,
    _TYPE_SRV,
    _TYPE_TXT,
)

from p2pspaces.core.identity import Identity
from p2pspaces.core.room import room_id_from
from p2pspaces.net.discovery import SERVICE_TYPE, RoomAdvert, encode_txt, instance_name
from p2pspaces.testing.command import start_argv
from p2pspaces.testing.lan import NodeProcess

MDNS = ("224.0.0.251", 5353)
TTL = 120
REANNOUNCE_WAIT_S = 7.0
"""Longer than a room authority's re-announcement period (5 s)."""


def _txt(properties: dict[str, str]) -> bytes:
    out = b""
    for key, value in properties.items():
        item = f"{key}={value}".encode()
        out += bytes([len(item)]) + item
    return out


def advert_packet(index: int, *, forged: bool, address: str = "127.0.0.1") -> bytes:
    """One node's advert of a room; ``forged`` ones carry a signature that does not verify."""
    identity = Identity.generate()
    birth = os.urandom(32)
    room_id = room_id_from(identity.node_id, birth)
    room = RoomAdvert(room_id, f"Flood {index}", 1, index % 50, identity.node_id, birth)
    properties = encode_txt(identity, f"Flooder {index}", 9, room, version=1)
    if forged:
        properties["t"] = f"Forged {index}"  # changed after signing
    name = instance_name(identity.node_id)
    server = f"flood{index}-{'f' if forged else 'v'}.local."
    out = DNSOutgoing(_FLAGS_QR_RESPONSE | _FLAGS_AA)
    unique = _CLASS_IN | _CLASS_UNIQUE
    out.add_answer_at_time(DNSPointer(SERVICE_TYPE, _TYPE_PTR, _CLASS_IN, TTL, name), 0)
    out.add_answer_at_time(DNSService(name, _TYPE_SRV, unique, TTL, 0, 0, 9, server), 0)
    out.add_answer_at_time(DNSText(name, _TYPE_TXT, unique, TTL, _txt(properties)), 0)
    out.add_answer_at_time(DNSAddress(server, _TYPE_A, unique, TTL, socket.inet_aton(address)), 0)
    (packet,) = out.packets()
    return packet


def packets(valid: int, forged: int) -> Iterator[bytes]:
    """Valid and forged adverts, interleaved."""
    for index in range(max(valid, forged)):
        if index < valid:
            yield advert_packet(index, forged=False)
        if index < forged:
            yield advert_packet(index, forged=True)


def flood(valid: int, forged: int, *, interface: str = "127.0.0.1", per_ms: int = 4) -> float:
    """Send the flood (about ``per_ms`` packets a millisecond); return the seconds it took."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    start = time.monotonic()
    try:
        for count, packet in enumerate(packets(valid, forged), start=1):
            sock.sendto(packet, MDNS)
            if count % (per_ms * 10) == 0:
                time.sleep(0.01)
    finally:
        sock.close()
    return time.monotonic() - start


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class FloodResult:
    """What a flood did to a node."""

    rss_before_mb: float
    rss_after_mb: float
    flood_s: float
    rooms_listed: int
    real_room_listed: bool
    join_s: float
    rooms_command_s: float


def node_command(home: Path, name: str, *extra: str) -> list[str]:
    """``p2pspaces start --headless`` on loopback, with no audio devices."""
    return start_argv(*extra, home=home / name, name=name, headless=True, silent=True)


def run_flood(tmp: Path, valid: int, forged: int, env: dict[str, str] | None = None) -> FloodResult:
    """Host a real room, flood a second node with adverts, then list rooms and join the real one
    (``env`` lets a benchmark run another tree's nodes, to compare)."""
    hana = NodeProcess(node_command(tmp, "Hana", "--host", "Real room"), tmp / "hana.log", env)
    ann = NodeProcess(node_command(tmp, "Ann"), tmp / "ann.log", env)
    try:
        real = hana.wait_for("joined", within=20)["room"]  # by id: titles need not be unique
        ann.wait_for("room_found", lambda e: e["room"] == real, within=20)
        time.sleep(1.0)
        before = rss_mb(ann.proc.pid)
        took = flood(valid, forged)
        time.sleep(REANNOUNCE_WAIT_S)  # the flood is digested; the real host re-announces
        after = rss_mb(ann.proc.pid)
        asked = time.monotonic()
        ann.send(cmd="rooms")
        try:
            listed = ann.wait_for("rooms", within=30)["rooms"]
        except AssertionError:  # a node without the rooms command
            listed = []
        answered = time.monotonic() - asked
        asked = time.monotonic()
        ann.send(cmd="join", room=real, wait=30)
        try:
            ann.wait_for("joined", within=60)
            joined = time.monotonic() - asked
        except AssertionError:
            joined = float("inf")  # reported; the test asserts on it
            errors = [e for e in ann.seen if e["event"] == "error"][-3:]
            print("join failed; last errors:", errors)
        return FloodResult(
            before,
            after,
            took,
            len(listed),
            any(room["room"] == real for room in listed),
            joined,
            answered,
        )
    finally:
        ann.stop()
        hana.stop()
