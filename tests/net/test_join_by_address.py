"""Joining by the host's ADDR:PORT on loopback, where mDNS sees the room as well (the dialer must
not race a second link to the host), and the clear errors of a wrong address."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from p2pspaces.core.errors import CommandError


async def test_join_by_address_while_mdns_also_lists_the_room(
    make_node: Callable[..., Any],
) -> None:
    hana, ann, bob = await make_node("Hana"), await make_node("Ann"), await make_node("Bob")
    room = await hana.host(f"By address {secrets.token_hex(2)}")
    await ann.directory.wait_for(room.hex(), 10)  # mDNS has it too
    for member in (ann, bob):
        assert await member.join(hana.join_addresses[0]) == room
    assert {ann.node_id, bob.node_id} <= set(hana.replica.state.members)
    # Members hold each other's contacts, relayed by the room.
    for _ in range(200):
        reach = ann.session.contact_of(bob.node_id)
        if reach is not None:
            break
        await asyncio.sleep(0.02)
    assert reach is not None and reach.port == bob.port


async def test_a_wrong_address_says_what_is_wrong(make_node: Callable[..., Any]) -> None:
    ann = await make_node("Ann")
    with pytest.raises(CommandError, match=r"could not join 127\.0\.0\.1:9: nothing listens"):
        await ann.join("127.0.0.1:9")
    with pytest.raises(CommandError, match="ourselves"):
        await ann.join(ann.join_addresses[0])
    assert ann.replica is None
    idle = await make_node("Idle")
    with pytest.raises(CommandError, match="not in a room"):
        await ann.join(idle.join_addresses[0])
