"""Heard by, in memory: listeners tell a speaker how loud they play it; the speaker learns who
hears it, who only very quietly, and who not at all (issue 21 item 3)."""

from __future__ import annotations

import logging

import pytest

from p2pspaces.core import wire
from p2pspaces.core.events import HeardBy
from p2pspaces.core.identity import Identity
from p2pspaces.core.session import RoomSession

from .kit import FakeNet

Room = tuple[FakeNet, dict[str, RoomSession]]


def _second(room: Room, hearing: dict[str, float], speaker_speaking: bool = True) -> None:
    """One second of the room: each listener reports what it played of Hana, then she ticks."""
    net, people = room
    hana = people["Hana"]
    for name, level in hearing.items():
        listener = people[name]
        listener.hearing.report({hana.me: level})
        net.pump(listener)
    net.run(1.0)
    hana.hearing.tick(speaker_speaking, net.now)
    net.pump(hana)


@pytest.fixture
def room() -> Room:
    net = FakeNet()
    people = {name: net.add(name) for name in ("Hana", "Ann", "Bob", "Cy")}
    net.room(*people.values())
    return net, people


def test_a_speaker_learns_who_hears_it_quietly_and_who_not_at_all(room: Room) -> None:
    net, people = room
    hana = people["Hana"]
    for _ in range(5):
        _second(room, {"Ann": -18.0, "Bob": -52.0, "Cy": -85.0})  # Cy's is below hearing
    told = net.seen(hana, HeardBy)
    assert told, "the speaker was never told who hears it"
    assert (told[-1].heard, told[-1].of, told[-1].quiet, told[-1].deaf) == (1, 3, ("Bob",), ("Cy",))
    assert len(told) <= 2  # said when it changes, not every second
    for _ in range(4):  # Bob turns his volume up, Cy's audio comes through
        _second(room, {"Ann": -18.0, "Bob": -20.0, "Cy": -22.0})
    assert (net.seen(hana, HeardBy)[-1].heard, net.seen(hana, HeardBy)[-1].of) == (3, 3)


def test_nothing_is_said_before_the_speaker_has_spoken_a_moment(room: Room) -> None:
    net, people = room
    hana = people["Hana"]
    _second(room, {"Ann": -18.0})
    assert net.seen(hana, HeardBy) == []
    for _ in range(5):
        _second(room, {"Ann": -18.0}, speaker_speaking=False)
    assert net.seen(hana, HeardBy) == []


def test_a_report_for_someone_else_or_another_room_is_refused(
    room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    net, people = room
    hana, ann = people["Hana"], people["Ann"]
    assert hana.state is not None
    stranger_guest = Identity.generate().node_id
    caplog.set_level(logging.WARNING)
    for message in (
        wire.Heard(hana.state.room_id, -10, stranger_guest),  # Ann serves no such guest
        wire.Heard(bytes(32), -10),  # type: ignore[arg-type]  # another room
    ):
        hana.receive(ann.me, wire.encode(message), net.now)
    assert "someone else's guest" in caplog.text and "another room" in caplog.text
    for _ in range(4):
        _second(room, {})
    assert net.seen(hana, HeardBy)[-1].deaf == ("Ann", "Bob", "Cy")
