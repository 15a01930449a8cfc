"""People you can trust by name, and titles that are never enough to pick one of two rooms."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from p2pspaces.core.events import ErrorEvent, RoomFound
from p2pspaces.core.identity import Identity, short_fingerprint
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.node.directory import AmbiguousRoom
from p2pspaces.node.people import PEOPLE_FILE, PeopleBook, Trust

from .conftest import LOOPBACK, next_event


async def test_two_rooms_with_one_title_are_never_joined_at_random(
    make_node: Callable[..., Any],
) -> None:
    title = f"Standup {secrets.token_hex(3)}"
    hana, hugo, ann = await make_node("Hana"), await make_node("Hugo"), await make_node("Ann")
    rooms = {await hana.host(title), await hugo.host(title)}
    for room in rooms:
        await ann.directory.wait_for(room.hex(), 15)
    with pytest.raises(AmbiguousRoom) as refused:
        await ann.join(title, wait=5)
    message = str(refused.value)
    for host in (hana, hugo):
        assert host.name in message and short_fingerprint(host.node_id) in message
    for room in rooms:
        assert room.hex()[:12] in message
    assert {c.room for c in refused.value.candidates} == rooms
    assert ann.replica is None  # nothing was joined
    joined = await ann.join(sorted(rooms)[0].hex()[:12])  # the id prefix from the message
    assert joined == sorted(rooms)[0]


async def test_a_known_name_with_a_new_key_is_flagged(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    title = f"Meetup {secrets.token_hex(3)}"
    real_hana = Identity.generate()
    book = PeopleBook(tmp_path)
    book.meet(real_hana.node_id, "Hana")
    book.save()
    me = Node(Identity.generate(), NodeConfig("Ann", interface=LOOPBACK, state_dir=tmp_path))
    await me.start()
    try:
        impostor = await make_node("Hana")
        room = await impostor.host(title)
        found = await next_event(me, RoomFound, lambda e: e.room == room)
        assert found.host_trust == Trust.CLASH.value
        await me.join(room.hex())
        warning = await next_event(me, ErrorEvent, lambda e: e.code == "name_clash")
        assert "not the Hana you met before" in warning.reason
        assert short_fingerprint(real_hana.node_id) in warning.reason
        await me.leave()
    finally:
        await me.stop()
    # The impostor's key was not remembered under the name it borrowed.
    again = PeopleBook(tmp_path)
    assert again.trust(impostor.node_id, "Hana") is Trust.CLASH
    assert again.trust(real_hana.node_id, "Hana") is Trust.KNOWN


async def test_hosts_met_before_are_marked_known(
    make_node: Callable[..., Any], tmp_path: Path
) -> None:
    title = f"Book club {secrets.token_hex(3)}"
    cody = await make_node("Cody")
    me = Node(Identity.generate(), NodeConfig("Ann", interface=LOOPBACK, state_dir=tmp_path))
    await me.start()
    try:
        room = await cody.host(title)
        first = await next_event(me, RoomFound, lambda e: e.room == room)
        assert first.host_trust == Trust.NEW.value
        await me.join(room.hex())
        await asyncio.sleep(0.2)
        await me.leave()
        assert {f.host_trust for f in me.room_list() if f.room == room} == {Trust.KNOWN.value}
    finally:
        await me.stop()
    assert cody.node_id.hex() in (tmp_path / PEOPLE_FILE).read_text()


def test_the_book_is_capped_and_survives_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / PEOPLE_FILE).write_text("{not json")
    book = PeopleBook(tmp_path)  # a broken file is ignored (and logged), not fatal
    assert book.people == {}
    for number in range(2100):
        book.meet(Identity.generate().node_id, f"p{number}", now=float(number))
    assert len(book.people) == 2000
    assert min(p.last_seen for p in book.people.values()) == 100.0
