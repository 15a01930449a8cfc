"""What a node takes from a relay link, and from whom (audio/relay.py): each way in that a
member running modified code could try, refused."""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field

from p2pspaces.audio.devices import NullSink, SilentSource
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.audio.proof import sign_packet, voice_tag, with_proof
from p2pspaces.audio.relay import PACKETS_PER_S_MAX, RelayPath
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.node.guests import RelayedVoice

ROOM = b"r" * 32
SAM, EVE = Identity.generate(), Identity.generate()
RELAY, OTHER = b"R" * 32, b"O" * 32


@dataclass
class Seen:
    """The plan as a listener sees it: its relay, and who may speak."""

    via: bytes | None = RELAY
    speaking: list[bytes] = field(default_factory=lambda: [SAM.node_id])
    gateways: dict[bytes, bytes] = field(default_factory=dict)
    """Browser guests on stage, and the node that serves (and signs for) each."""

    def parent(self) -> bytes | None:
        return self.via

    def children(self) -> Collection[bytes]:
        return ()

    def voices(self, tag: int) -> list[bytes]:
        return [v for v in self.speaking if voice_tag(v) == tag]

    def room(self) -> bytes | None:
        return ROOM

    def signer(self, voice: bytes) -> bytes:
        return self.gateways.get(voice, voice)


def _packet(who: Identity, pts: int, payload: bytes = b"opus frame") -> bytes:
    return with_proof(pts, sign_packet(who, ROOM, pts, payload), payload)


SAM_TAG = voice_tag(SAM.node_id)


def test_the_voice_through_our_relay_is_played_with_its_own_timing() -> None:
    path = RelayPath(Seen())
    taken = [path.take(RELAY, SAM_TAG, _packet(SAM, pts)) for pts in (960, 1920, 2880)]
    assert [t.voice if t else None for t in taken] == [SAM.node_id] * 3
    assert [(t.sequence_number, t.timestamp) for t in taken if t] == [
        (1, 960),
        (2, 1920),
        (3, 2880),
    ]
    assert taken[0] is not None and taken[0].payload == b"opus frame"
    assert path.refused == 0


def test_what_a_relay_or_a_stranger_makes_up_is_refused() -> None:
    path = RelayPath(Seen())
    refusals = [
        path.take(OTHER, SAM_TAG, _packet(SAM, 960)),  # a link that is not our relay
        path.take(RELAY, SAM_TAG, _packet(EVE, 960)),  # signed by someone else
        path.take(RELAY, voice_tag(EVE.node_id), _packet(EVE, 960)),  # not a voice now
        path.take(RELAY, SAM_TAG, _packet(SAM, 960)[:-1] + b"X"),  # altered
        path.take(RELAY, SAM_TAG, b"short"),  # no proof at all
    ]
    assert refusals == [None] * 5
    assert path.take(RELAY, SAM_TAG, _packet(SAM, 1920)) is not None
    assert path.take(RELAY, SAM_TAG, _packet(SAM, 1920)) is None  # the same packet again
    assert path.refused == 6


def test_a_relay_takes_the_voice_straight_only_while_it_hears_straight() -> None:
    straight = RelayPath(Seen(via=None))
    # Straight from Sam's own link (DTLS binds it to Sam): taken to be passed on.
    assert straight.take(SAM.node_id, SAM_TAG, _packet(SAM, 960)) is not None
    assert straight.take(OTHER, SAM_TAG, _packet(SAM, 960)) is None  # relayed: not ours
    relayed = RelayPath(Seen())
    assert relayed.take(SAM.node_id, SAM_TAG, _packet(SAM, 960)) is None


async def test_behind_a_relay_a_guest_its_gateway_relays_is_played_but_nothing_straight() -> None:
    engine = AudioEngine(b"m" * 32, SilentSource(), NullSink(), time.monotonic, lambda *_: None)
    engine.allowed = lambda peer: True
    engine.relay = RelayPath(Seen())  # we hear the room through RELAY
    straight = RelayedVoice(NodeId(SAM.node_id), 1, 960, b"opus")
    await engine.on_rtp(SAM.node_id, straight)  # Sam's own link: not while relayed
    assert SAM.node_id not in engine.streams and engine.refused_packets == 1
    guest = NodeId(EVE.node_id)
    await engine.on_guest_voice(guest, RelayedVoice(guest, 1, 960, b"opus"))
    assert engine.streams[guest].stats.received == 1


def test_a_flood_through_one_node_is_refused_before_any_check_or_passing_on() -> None:
    now = [5.0]
    path = RelayPath(Seen(via=None), clock=lambda: now[0])
    taken = [path.take(SAM.node_id, SAM_TAG, _packet(SAM, 960 * i)) for i in range(150)]
    assert sum(t is not None for t in taken) == PACKETS_PER_S_MAX  # twice a voice's rate
    now[0] = 6.0
    assert path.take(SAM.node_id, SAM_TAG, _packet(SAM, 960 * 151)) is not None


def test_a_guests_voice_is_signed_by_its_gateway_and_cannot_be_passed_off_as_another() -> None:
    gus = b"G" * 32  # a browser guest: no key of ours signs for it but its gateway's (Eve's)
    seen = Seen(speaking=[SAM.node_id, EVE.node_id, gus], gateways={gus: EVE.node_id})
    path = RelayPath(seen)
    gus_tag, eve_tag = voice_tag(gus), voice_tag(EVE.node_id)

    def by_eve(pts: int, voice: bytes) -> bytes:
        return with_proof(pts, sign_packet(EVE, ROOM, pts, b"opus", voice), b"opus")

    taken = path.take(RELAY, gus_tag, by_eve(960, gus))
    assert taken is not None and taken.voice == gus
    # Eve's own voice re-tagged as her guest's, and her guest's as her own: refused.
    assert path.take(RELAY, gus_tag, by_eve(1920, EVE.node_id)) is None
    assert path.take(RELAY, eve_tag, by_eve(2880, gus)) is None
    # Straight from the gateway (a relay that hears straight): the gateway's link, not another.
    straight = RelayPath(Seen(via=None, speaking=[gus], gateways={gus: EVE.node_id}))
    assert straight.take(EVE.node_id, gus_tag, by_eve(960, gus)) is not None
    assert straight.take(gus, gus_tag, by_eve(1920, gus)) is None
