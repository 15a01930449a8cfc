"""Rooms where multicast is filtered: joining by address, and members reaching each other
through the contacts the room relays (no mDNS at all in these tests)."""

from __future__ import annotations

import logging

import pytest

from p2pspaces.core import wire
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import Role
from p2pspaces.core.session import Phase
from p2pspaces.core.wire import ActionKind

from .kit import FakeNet, hashes


def _joined_by_address(net: FakeNet, *names: str):  # type: ignore[no-untyped-def]
    host = net.add("Hana")
    net.host(host)
    others = [net.add(name) for name in names]
    for other in others:
        other.join(None, host.me, net.now)  # the address on the host's screen names no room
        net.pump(other)
        net.run_until(lambda o=other: o.phase is Phase.MEMBER, limit=5)
    net.settle(0.5)
    return host, others


def test_join_by_address_learns_the_room_and_everyone_agrees() -> None:
    net = FakeNet()
    net.mdns = False
    host, (ann, bob) = _joined_by_address(net, "Ann", "Bob")
    assert ann.state is not None and ann.state.room_id == host.state.room_id  # type: ignore[union-attr]
    assert len(hashes(host, ann, bob)) == 1


def test_members_learn_each_others_contacts_and_speakers_link_without_mdns() -> None:
    net = FakeNet()
    net.mdns = False
    host, (ann, bob, cody) = _joined_by_address(net, "Ann", "Bob", "Cody")
    for member in (ann, bob, cody):
        for other in (host, ann, bob, cody):
            if other is not member:
                reach = member.contact_of(other.me)
                assert reach is not None, (member.name, other.name)
                assert reach.addresses == other.contacts.own[0]  # type: ignore[index]
    net.act(host, ActionKind.INVITE_SPEAKER, ann)
    net.settle(0.2)
    net.act(ann, ActionKind.ACCEPT_INVITE)
    net.settle(1.0)
    assert host.state.members[ann.me].role is Role.SPEAKER  # type: ignore[union-attr]
    # A speaker's audio links to every member formed from relayed contacts alone.
    assert {host.me, bob.me, cody.me} <= ann.links


def test_a_takeover_works_without_mdns() -> None:
    net = FakeNet()
    net.mdns = False
    host, (ann, bob) = _joined_by_address(net, "Ann", "Bob")
    net.act(host, ActionKind.ADD_COHOST, ann)
    net.settle(0.5)
    net.crash(host)
    net.run_until(lambda: bob.state is not None and bob.state.authority == ann.me, limit=10)
    net.settle(1.0)
    assert ann.is_authority
    assert host.me not in bob.state.members  # type: ignore[union-attr]
    assert len(hashes(ann, bob)) == 1


def test_contacts_of_members_who_left_are_forgotten() -> None:
    net = FakeNet()
    net.mdns = False
    host, (ann, bob) = _joined_by_address(net, "Ann", "Bob")
    assert ann.contact_of(bob.me) is not None
    net.act(host, ActionKind.REMOVE, bob)
    net.settle(0.5)
    assert ann.contact_of(bob.me) is None
    assert host.contact_of(bob.me) is None


def test_a_member_cannot_speak_for_anyone_else(caplog: pytest.LogCaptureFixture) -> None:
    net = FakeNet()
    net.mdns = False
    host, (ann, bob) = _joined_by_address(net, "Ann", "Bob")
    room_id = host.state.room_id  # type: ignore[union-attr]
    # Ann relays a contact signed by Bob's key but claiming another address: only the
    # authority relays others' contacts, so the host refuses it and keeps Bob's own.
    forged_for_bob = wire.seal_bytes(Identity.generate(), wire.Contact(room_id, ("6.6.6.6",), 1))
    forged = wire.encode(wire.Contacts(room_id, (forged_for_bob,)))
    with caplog.at_level(logging.WARNING, logger="p2pspaces.session"):
        host.receive(ann.me, forged, net.now)
    assert "not the room's authority" in caplog.text
    reach = host.contact_of(bob.me)
    assert reach is not None and reach.addresses != ("6.6.6.6",)
    # A stranger's contact relayed by the authority itself is kept by nobody.
    stranger = Identity.generate()
    relayed = wire.encode(
        wire.Contacts(room_id, (wire.seal_bytes(stranger, wire.Contact(room_id, ("6.6.6.6",), 1)),))
    )
    bob.receive(host.me, relayed, net.now)
    assert bob.contact_of(stranger.node_id) is None
    assert ann.phase is bob.phase is Phase.MEMBER
