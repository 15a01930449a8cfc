#!/usr/bin/env python3
"""Benchmark the pure room core on one core.

Prints: signed updates verified and applied per second by a member's replica (in a small room
and in a room of 10 speakers and 1,000 listeners), next to the bare Ed25519 verifications per
second measured in the same run (the floor: every update costs at least one); the same through a
member node's real path (``RoomSession.receive``: the bytes as they arrive, decoded, verified,
applied, hashed, events made); and the size of a signed snapshot of the large room.  Targets
(issue 2): >= 5,000 updates/s; snapshot < 100 KB; (issue 17) the session path >= 70% of bare
verification at 1,000 listeners.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from p2pspaces.audio.proof import VoiceChecker, sign_packet
from p2pspaces.core import room
from p2pspaces.core.identity import Identity, NodeId, verify
from p2pspaces.core.ledger import Replica
from p2pspaces.core.session import RoomSession
from p2pspaces.core.wire import DOMAIN_MESSAGE, Action, ActionKind


def build_room(speakers: int, listeners: int) -> tuple[Identity, Replica, list[Identity]]:
    host = Identity.generate()
    genesis = room.genesis_record(
        host, "Host", "Benchmark room", created_ms=0, nonce=os.urandom(16), max_speakers=speakers
    )
    replica = Replica.from_genesis(genesis)
    people = []
    for index in range(speakers + listeners):
        person = Identity.generate()
        people.append(person)
        replica.issue(host, person.node_id, Action(ActionKind.JOIN, text=f"Guest {index:04d}"))
        if index < speakers:
            replica.issue(host, host.node_id, Action(ActionKind.INVITE_SPEAKER, person.node_id))
            replica.issue(host, person.node_id, Action(ActionKind.ACCEPT_INVITE))
    return host, replica, people


def signed_updates(
    host: Identity, authority: Replica, people: list[Identity], speakers: int, count: int
) -> list[bytes]:
    """``count`` signed updates muting and unmuting the speakers in turn."""
    speaker_ids = [p.node_id for p in people[:speakers]]
    signed = []
    for index in range(count):
        target = NodeId(speaker_ids[index % len(speaker_ids)])
        muted = authority.state.members[target].muted
        kind = ActionKind.UNMUTE if muted else ActionKind.MUTE
        actor = target if muted else host.node_id
        signed.append(authority.issue(host, actor, Action(kind, None if muted else target)))
    return signed


def updates_per_second(speakers: int, listeners: int, count: int) -> float:
    """A bare replica: verify, apply and hash each update."""
    host, authority, people = build_room(speakers, listeners)
    member = Replica.from_snapshot(authority.snapshot(host))
    signed = signed_updates(host, authority, people, speakers, count)
    start = time.process_time()
    for data in signed:
        member.receive(data)
        member.hash()
    elapsed = time.process_time() - start
    assert member.hash() == authority.hash()
    return count / elapsed


def session_updates_per_second(speakers: int, listeners: int, count: int) -> float:
    """The real path of a member node: ``RoomSession.receive`` with the bytes as they arrive
    (decode, open, verify, apply, hash, events), everything a member does for one update."""
    host, authority, people = build_room(speakers, listeners)
    member = RoomSession(Identity.generate(), "Member")
    member.join(authority.room_id, host.node_id, 0.0)
    member.link_up(host.node_id, 0.0)
    member.receive(host.node_id, authority.snapshot(host), 0.0)
    member.pop_outputs()
    member.pop_events()
    signed = signed_updates(host, authority, people, speakers, count)
    start = time.process_time()
    for data in signed:
        member.receive(host.node_id, data, 1.0)
        member.pop_outputs()
        member.pop_events()
    elapsed = time.process_time() - start
    assert member.replica is not None and member.replica.hash() == authority.hash()
    return count / elapsed


def verifies_per_second(count: int) -> float:
    signer = Identity.generate()
    payload = os.urandom(200)
    signature = signer.sign(DOMAIN_MESSAGE, payload)
    start = time.process_time()
    for _ in range(count):
        verify(signer.node_id, signature, DOMAIN_MESSAGE, payload)
    return count / (time.process_time() - start)


def voice_packet_costs(count: int) -> tuple[float, float]:
    """Microseconds to sign one voice packet (a speaker, once for all its connections) and to
    check one (a listener hearing it through a relay): 20 ms of Opus at 40 kbit/s."""
    speaker, room_id, payload = Identity.generate(), os.urandom(32), os.urandom(100)
    start = time.process_time()
    signatures = [sign_packet(speaker, room_id, 960 * i, payload) for i in range(count)]
    signed = time.process_time() - start
    checker = VoiceChecker(speaker.node_id, room_id)
    start = time.process_time()
    ok = [checker.check(960 * i, payload, sig) for i, sig in enumerate(signatures)]
    checked = time.process_time() - start
    assert all(ok)
    return 1e6 * signed / count, 1e6 * checked / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=5000, help="updates per measurement")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, python {platform.python_version()}")
    floor = verifies_per_second(args.updates)
    small = updates_per_second(10, 20, args.updates)
    large = updates_per_second(10, 1000, max(500, args.updates // 10))
    session_small = session_updates_per_second(10, 20, args.updates)
    session_large = session_updates_per_second(10, 1000, max(500, args.updates // 10))
    host, replica, _ = build_room(10, 1000)
    snapshot = replica.snapshot(host)
    print(f"bare Ed25519 verify (baseline)          {floor:10,.0f} /s")
    for label, rate in (("10+20", small), ("10+1000", large)):
        share = f"({rate / floor:.0%} of baseline)"
        print(f"updates verified+applied, {label:7} room  {rate:10,.0f} /s  {share}")
    for label, rate in (("10+20", session_small), ("10+1000", session_large)):
        share = f"({rate / floor:.0%} of baseline)"
        print(f"session path (member node), {label:7} room {rate:8,.0f} /s  {share}")
    sign_us, check_us = voice_packet_costs(min(args.updates, 2000))
    print(
        f"voice packet proof (relays): sign {sign_us:.0f} us, check {check_us:.0f} us per packet"
        f" = {sign_us * 50 / 1e4:.2f}% / {check_us * 50 / 1e4:.2f}% of a core per voice at 50/s"
    )
    print(
        f"signed snapshot, 10 speakers + 1000 listeners: {len(snapshot):,} bytes "
        f"({len(snapshot) / 1000:.1f} KB; {len(snapshot) / 1011:.0f} bytes per member)"
    )


if __name__ == "__main__":
    main()
