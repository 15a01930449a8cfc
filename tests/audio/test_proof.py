"""A relay forwards a speaker's packets and can change none of them: what a listener refuses."""

from __future__ import annotations

import os

import pytest

from p2pspaces.audio.proof import (
    REPLAY_WINDOW,
    TIMESTAMP_WRAP,
    VoiceChecker,
    sign_packet,
    voice_tag,
    with_proof,
    without_proof,
)
from p2pspaces.core.identity import Identity

ROOM = b"r" * 32
OTHER_ROOM = b"o" * 32


@pytest.fixture(scope="module")
def sam() -> Identity:
    return Identity.generate()


def test_the_speakers_own_packets_pass_in_order_and_a_little_late(sam: Identity) -> None:
    checker = VoiceChecker(sam.node_id, ROOM)
    payloads = [os.urandom(80) for _ in range(5)]
    signed = [(960 * i, p, sign_packet(sam, ROOM, 960 * i, p)) for i, p in enumerate(payloads)]
    assert checker.check(*signed[0]) and checker.check(*signed[1])
    assert checker.check(*signed[3])
    assert checker.check(*signed[2])  # reordered by the network: still within the window
    assert checker.check(*signed[4])
    assert checker.refused == 0


def test_a_relay_cannot_alter_invent_replay_or_move_a_packet(sam: Identity) -> None:
    checker = VoiceChecker(sam.node_id, ROOM)
    relay = Identity.generate()
    payload = os.urandom(80)
    signature = sign_packet(sam, ROOM, 48_000, payload)
    assert not checker.check(48_000, payload[:-1] + b"\x00", signature)  # altered
    assert not checker.check(48_000, payload, sign_packet(relay, ROOM, 48_000, payload))  # own
    assert not checker.check(48_960, payload, signature)  # moved to another time
    other_room = VoiceChecker(sam.node_id, OTHER_ROOM)
    assert not other_room.check(48_000, payload, signature)  # taken from another room
    assert not checker.check(48_000, payload, signature[:32])  # cut short
    assert checker.check(48_000, payload, signature)
    assert not checker.check(48_000, payload, signature)  # a second copy
    later = 48_000 + 2 * REPLAY_WINDOW
    assert checker.check(later, payload, sign_packet(sam, ROOM, later, payload))
    assert not checker.check(48_000, payload, signature)  # an old one, replayed
    assert checker.refused == 6 and other_room.refused == 1


def test_timestamps_go_on_across_the_32_bit_wrap(sam: Identity) -> None:
    checker = VoiceChecker(sam.node_id, ROOM)
    for timestamp in (TIMESTAMP_WRAP - 960, TIMESTAMP_WRAP, TIMESTAMP_WRAP + 960):
        payload = os.urandom(40)
        assert checker.check(timestamp, payload, sign_packet(sam, ROOM, timestamp, payload))


def test_the_proof_travels_ahead_of_the_payload(sam: Identity) -> None:
    signature = sign_packet(sam, ROOM, 960, b"opus")
    data = with_proof(960, signature, b"opus")
    assert len(data) == 68 + 4
    assert without_proof(data) == (960, signature, b"opus")
    assert without_proof(data[:68]) is None  # a proof and no payload
    assert without_proof(b"") is None
    assert voice_tag(sam.node_id) == int.from_bytes(sam.node_id[:4], "big")


def test_a_relay_cannot_hold_a_sentence_back_and_play_it_later(sam: Identity) -> None:
    checker = VoiceChecker(sam.node_id, ROOM)
    payload = b"opus"

    def packet(frame: int, arrival: float) -> bool:
        pts = 960 * frame
        return checker.check(pts, payload, sign_packet(sam, ROOM, pts, payload), arrival)

    # Ten seconds of frames arriving on time (with a little jitter); then a relay keeps
    # everything from frame 500 on and lets it out a minute later: refused.  A stall of the
    # speaker's own puts its clock half a second behind: still taken.
    assert all(packet(f, 100 + f / 50 + 0.003 * (f % 3)) for f in range(500))
    assert not any(packet(f, 160 + f / 50) for f in range(500, 550))
    assert all(packet(f, 100 + f / 50 + 0.5) for f in range(550, 600))
