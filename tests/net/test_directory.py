"""Which advert stands for a room in the lobby (in memory: the directory is fed by discovery)."""

from __future__ import annotations

import logging
import os

import pytest

from p2pspaces.core.events import Event, RoomFound, RoomLost
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.room import room_id_from
from p2pspaces.net.discovery import (
    AdvertError,
    PeerAdvert,
    PeerGone,
    PeerSeen,
    RoomAdvert,
    WebPorts,
    decode_txt,
    encode_txt,
)
from p2pspaces.node.directory import RoomDirectory

HOST = Identity.generate().node_id
BIRTH = os.urandom(32)
ROOM = room_id_from(HOST, BIRTH)


def _advert(node: NodeId, name: str, title: str = "Friday demos") -> PeerSeen:
    room = RoomAdvert(ROOM, title, 1, 3, HOST, BIRTH)
    return PeerSeen(PeerAdvert(node, name, ("10.0.0.9",), 4000, room))


def _directory() -> tuple[RoomDirectory, list[Event]]:
    events: list[Event] = []
    return RoomDirectory(events.append, lambda: None), events


def _standing(directory: RoomDirectory) -> str:
    [room] = directory.listed()
    return room.host_name


def test_the_hosts_advert_stands_for_its_room_whoever_came_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "p2pspaces.node.directory")
    directory, events = _directory()
    cody, mallory = Identity.generate().node_id, Identity.generate().node_id
    directory.on_discovery(_advert(cody, "Cody"))  # a co-host keeping the room
    directory.on_discovery(_advert(mallory, "Mallory", "Free pizza"))  # heard later: ignored
    assert _standing(directory) == "Cody"
    directory.on_discovery(_advert(HOST, "Hana"))  # the host is back: its advert stands
    assert _standing(directory) == "Hana"
    assert isinstance(events[-1], RoomFound) and events[-1].changed
    for _ in range(3):
        directory.on_discovery(_advert(mallory, "Mallory", "Free pizza!"))
    assert _standing(directory) == "Hana"
    assert caplog.text.count("ignoring") == 1  # once per advertiser and room
    # The host goes: its place goes to the most recently heard other advert, not a gap.
    directory.on_discovery(PeerGone(HOST))
    assert _standing(directory) == "Mallory"
    directory.on_discovery(PeerGone(mallory))
    assert _standing(directory) == "Cody"
    directory.on_discovery(PeerGone(cody))
    assert directory.listed() == () and isinstance(events[-1], RoomLost)


def test_an_advert_that_claims_another_hosts_room_id_is_refused() -> None:
    mallory = Identity.generate()
    # Mallory names itself host of the room: the id is not made from its key.
    room = RoomAdvert(ROOM, "Free pizza", 1, 0, mallory.node_id, BIRTH)
    with pytest.raises(AdvertError, match="not its host's"):
        decode_txt(encode_txt(mallory, "Mallory", 4000, room), 4000)
    # Naming the real host (as a co-host does) passes, but does not make it the host's advert.
    honest = RoomAdvert(ROOM, "Free pizza", 1, 0, HOST, BIRTH)
    node, _, decoded, _ = decode_txt(encode_txt(mallory, "Mallory", 4000, honest), 4000)
    assert decoded is not None
    assert not PeerAdvert(node, "Mallory", (), 4000, decoded).by_host


def test_a_room_advert_says_where_its_node_serves_phones_and_bad_ports_are_refused() -> None:
    hana = Identity.generate()
    birth = os.urandom(32)
    web = WebPorts(8080, 8443, "ab" * 32)
    room = RoomAdvert(
        room_id_from(hana.node_id, birth), "Demos", 1, 0, hana.node_id, birth, web=web
    )
    _, _, decoded, _ = decode_txt(encode_txt(hana, "Hana", 4000, room), 4000)
    assert decoded is not None and decoded.web == web
    for bad in ("0/8443/" + "ab" * 32, "8080/8443/xyz", "8080/70000/" + "ab" * 32, "8080"):
        fields = encode_txt(hana, "Hana", 4000, room)
        fields["w"] = bad
        fields["s"] = encode_txt(hana, "Hana", 4000, room)["s"]  # the signature no longer fits
        with pytest.raises(AdvertError):
            decode_txt(fields, 4000)
    for bad in ("0/8443/" + "ab" * 32, "8080/8443/" + "zz" * 32, "8080/70000/" + "ab" * 32):
        with pytest.raises(ValueError):
            WebPorts.parse(bad)
