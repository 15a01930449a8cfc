"""Attacks on a live node: each is refused with a reason, and the node keeps serving others."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from p2pspaces.core import wire
from p2pspaces.core.errors import PeerError
from p2pspaces.core.events import ChatReceived, ErrorEvent, RoomFound, StateChanged
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import room_id_from
from p2pspaces.core.wire import Action, ActionKind, Offer
from p2pspaces.net import discovery, signaling
from p2pspaces.net.mesh import _new_connection, sdp_fingerprints
from p2pspaces.node import Node

from ..session.byzantine import forged_snapshot
from .conftest import LOOPBACK, next_event


async def _room_with_member(make_node: Callable[..., Any]) -> tuple[Node, Node]:
    host, ann = await make_node("Hana"), await make_node("Ann")
    room_id = await host.host("Under attack")
    await ann.join(room_id.hex())
    await next_event(host, StateChanged, lambda e: e.state.seq == 1)
    return host, ann


async def _still_serving(host: Node, ann: Node, text: str) -> None:
    """The room still works: a chat line goes round."""
    await ann.chat(text)
    chat = await next_event(host, ChatReceived, lambda e: e.text == text)
    assert chat.name == "Ann"


async def _raw(port: int, payload: bytes) -> bytes:
    """Send raw bytes to a signaling port; return what comes back before it closes."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(payload)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_garbage_and_oversize_frames_lose_their_connection_only(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    host, ann = await _room_with_member(make_node)
    caplog.set_level(logging.INFO, "p2pspaces.net.signaling")
    await _raw(host.port, struct.pack(">I", 12) + os.urandom(12))
    await _raw(host.port, struct.pack(">I", 10_000_000))
    assert "malformed msgpack" in caplog.text or "unknown message type" in caplog.text
    assert "frame of 10000000 bytes exceeds the 65536-byte cap" in caplog.text
    await _still_serving(host, ann, "after garbage")
    # And a new member can still join.
    cara = (
        await ann.__class__(Identity.generate(), "Cara", interface=LOOPBACK).__aenter__()
        if False
        else None
    )
    assert cara is None


async def test_a_stalling_client_times_out_while_others_join(
    make_node: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(signaling, "READ_TIMEOUT", 0.5)
    caplog.set_level(logging.INFO, "p2pspaces.net.signaling")
    host = await make_node("Hana")
    room_id = await host.host("Stalled")
    reader, writer = await asyncio.open_connection(LOOPBACK, host.port)  # says nothing
    ann = await make_node("Ann")
    await ann.join(room_id.hex())
    async with asyncio.timeout(10):
        received = await reader.read()  # returns only once the server hangs up
    writer.close()
    (size,) = struct.unpack(">I", received[:4])
    assert isinstance(wire.decode(received[4 : 4 + size]), wire.Hello)
    assert len(received) == 4 + size  # the hello, then nothing: the staller was cut off
    assert "connection failed (TimeoutError)" in caplog.text
    assert ann.node_id in host.replica.state.members


async def test_an_sdp_whose_fingerprint_differs_from_the_signed_one_is_refused(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    host, ann = await _room_with_member(make_node)
    caplog.set_level(logging.INFO, "p2pspaces.net.signaling")
    mallory = Identity.generate()
    while mallory.node_id > host.node_id:  # Mallory must be the one who offers
        mallory = Identity.generate()
    session = await signaling.connect(LOOPBACK, host.port, mallory, "Mallory")
    pc, *_ = _new_connection(host.node_id, None)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    honest = Offer(mallory.node_id, host.node_id, os.urandom(16), sdp, sdp_fingerprints(sdp))
    forged = dataclasses.replace(honest, dtls_fingerprint="sha-256 " + ":".join(["AB"] * 32))
    await session.send(wire.seal_bytes(mallory, forged))
    async with asyncio.timeout(10):
        assert await session.reader.read() == b""
    session.close()
    await pc.close()
    assert "offer's DTLS fingerprint differs from the signed one" in caplog.text
    assert mallory.node_id not in host.mesh.links
    await _still_serving(host, ann, "after the forged SDP")


async def test_forged_and_replayed_updates_are_refused(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    host, ann = await _room_with_member(make_node)
    mallory = await make_node("Mallory")
    await mallory.join(host.replica.room_id.hex())
    state = await next_event(ann, StateChanged, lambda e: e.state.seq == 2)
    genuine = host.replica  # the authority's replica; Mallory replays what it saw
    await ann.request(Action(ActionKind.RAISE_HAND))
    await next_event(ann, StateChanged, lambda e: e.state.seq == 3)
    before = ann.replica.hash()
    caplog.set_level(logging.WARNING, "p2pspaces.node")
    # Mallory links straight to Ann and sends an update signed with its own key...
    await mallory.mesh.connect(LOOPBACK, ann.port)
    forged = wire.Update(
        state.state.room_id, 0, 4, before, ann.node_id, Action(ActionKind.LEAVE), b"s" * 32
    )
    mallory.mesh.send(ann.node_id, wire.seal_bytes(mallory.identity, forged))
    # ...and replays the host's genuine update for seq 3.
    replay = _last_update_bytes(host)
    mallory.mesh.send(ann.node_id, replay)
    await asyncio.sleep(0.3)
    assert "update not signed by the room's authority" in caplog.text
    assert "replayed seq 3" in caplog.text
    assert ann.replica.hash() == before
    await host.request(Action(ActionKind.ACCEPT_HAND, ann.node_id))
    after = await next_event(ann, StateChanged, lambda e: e.state.seq == 4)
    assert after.state.members[ann.node_id].role.name == "SPEAKER"
    assert genuine.hash() == ann.replica.hash()


def _last_update_bytes(host: Node) -> bytes:
    recent = host.replica._recent  # the authority keeps what it signed: (state hash, bytes)
    return recent[next(reversed(recent))][1]


async def test_a_forged_mdns_advert_is_ignored(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "p2pspaces.net.discovery")
    watcher = await make_node("Watcher")
    victim, forger = Identity.generate(), Identity.generate()
    birth = os.urandom(32)
    room_id = room_id_from(victim.node_id, birth)
    room = discovery.RoomAdvert(room_id, "Free pizza", 1, 0, victim.node_id, birth)
    txt = discovery.encode_txt(forger, "Victim", 4000, room)
    txt["k"] = discovery.encode_txt(victim, "Victim", 4000, None)["k"]  # claim the victim's key
    zc = AsyncZeroconf(interfaces=[LOOPBACK])
    info = AsyncServiceInfo(
        discovery.SERVICE_TYPE,
        discovery.instance_name(victim.node_id),
        port=4000,
        properties=txt,
        parsed_addresses=[LOOPBACK],
    )
    await zc.async_register_service(info, cooperating_responders=True)
    try:
        host = await make_node("Hana")
        real = await host.host("Real room")
        found = await next_event(watcher, RoomFound)
        assert found.room == real  # the forged room never shows up
        assert "ignoring mDNS advert" in caplog.text and "bad signature" in caplog.text
        assert caplog.text.count("ignoring mDNS advert") == 1
    finally:
        await zc.async_unregister_service(info)
        await zc.async_close()


async def _advertise(identity: Identity, room: discovery.RoomAdvert) -> AsyncZeroconf:
    """A node of modified code on the LAN: its own key's signed advert, naming ``room``."""
    zc = AsyncZeroconf(interfaces=[LOOPBACK])
    info = AsyncServiceInfo(
        discovery.SERVICE_TYPE,
        discovery.instance_name(identity.node_id),
        port=4000,
        properties=discovery.encode_txt(identity, "Mallory", 4000, room),
        parsed_addresses=[LOOPBACK],
    )
    await zc.async_register_service(info, cooperating_responders=True)
    return zc


async def test_a_second_advert_for_a_live_room_is_ignored_and_logged_once(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "p2pspaces.node.directory")
    watcher, host = await make_node("Watcher"), await make_node("Hana")
    real = await host.host("Real room")
    await next_event(watcher, RoomFound, lambda e: e.room == real)
    mine = host._room_advert()
    assert mine is not None
    mallory = Identity.generate()
    # Mallory copies the room's id and its proof, and names itself the keeper of a better room.
    copy = dataclasses.replace(mine, title="Free pizza", listeners=99)
    zc = await _advertise(mallory, copy)
    try:
        await asyncio.sleep(2.0)  # two rounds of mDNS
        [listed] = [r for r in watcher.directory.listed() if r.room == real]  # other tests' too
        assert (listed.title, listed.host) == ("Real room", host.node_id)
        assert caplog.text.count("ignoring") == 1 and "is its host" in caplog.text
        # Claiming to be the host itself does not pass the id's check.
        await zc.async_close()
        forged = dataclasses.replace(copy, host=mallory.node_id)
        zc = await _advertise(mallory, forged)
        await asyncio.sleep(2.0)
        assert [r.title for r in watcher.directory.listed() if r.room == real] == ["Real room"]
    finally:
        await zc.async_close()


async def test_an_address_given_for_one_node_never_links_to_another(
    make_node: Callable[..., Any],
) -> None:
    """A member's contact may name any address: dialing it reaches whoever listens there. The
    handshake's key is checked against the node dialed, so the room cannot be made to dial a
    third party into a link, nor to replace its link to the host."""
    host, ann = await _room_with_member(make_node)
    before = ann.mesh.links[host.node_id]
    mallory = Identity.generate().node_id
    contact = wire.Contact(host.replica.room_id, (LOOPBACK,), host.port)  # the host's address
    with pytest.raises(PeerError, match="not"):
        await ann.links.dialer.dial_now(mallory, contact)
    assert ann.mesh.links[host.node_id] is before  # the host's link was not replaced
    assert mallory not in ann.mesh.links
    await _still_serving(host, ann, "still here")


async def test_a_data_channel_flood_drops_only_the_flooder(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    host, ann = await _room_with_member(make_node)
    mallory = await make_node("Mallory")
    await mallory.join(host.replica.room_id.hex())
    await next_event(ann, StateChanged, lambda e: mallory.node_id in e.state.members)
    caplog.set_level(logging.INFO, "p2pspaces.net.mesh")
    state = host.replica.state
    beat = wire.seal_bytes(
        mallory.identity, wire.Heartbeat(state.room_id, state.epoch, state.seq, b"h" * 32)
    )
    for _ in range(2000):
        mallory.mesh.send(host.node_id, beat)
    gone = await next_event(ann, StateChanged, lambda e: mallory.node_id not in e.state.members)
    assert ann.node_id in gone.state.members
    assert "messages a second" in caplog.text
    await _still_serving(host, ann, "after the flood")


async def test_an_authority_that_equivocates_is_caught_with_proof(
    make_node: Callable[..., Any],
) -> None:
    host, ann = await _room_with_member(make_node)
    await host.request(Action(ActionKind.SET_TITLE, text="Agreed title"))
    await next_event(ann, StateChanged, lambda e: e.state.title == "Agreed title")
    state = host.replica.state
    # A second, different update for the seq Ann already applied, validly signed by the host.
    other = wire.Update(
        state.room_id,
        state.epoch,
        state.seq,
        b"h" * 32,
        host.node_id,
        Action(ActionKind.SET_TITLE, text="Something else"),
        b"s" * 32,
    )
    host.mesh.send(ann.node_id, wire.seal_bytes(host.identity, other))
    alarm = await next_event(ann, ErrorEvent, lambda e: e.code == "equivocation")
    assert f"seq {state.seq}" in alarm.reason
    first, second = ann.equivocations[0]
    assert first != second
    assert ann.replica.state.title == "Agreed title"


async def test_a_listener_that_sends_the_host_a_forged_snapshot_changes_nothing(
    make_node: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 17: a listener names itself authority at the next epoch, renames the room and
    blocks a member, signs it with its own key and sends it to the host over its own link."""
    host, ann = await _room_with_member(make_node)
    mallory = await make_node("Mallory")
    await mallory.join(host.replica.room_id.hex())
    await next_event(ann, StateChanged, lambda e: mallory.node_id in e.state.members)
    caplog.set_level(logging.WARNING, "p2pspaces.session")
    before = host.replica.hash()
    mallory.mesh.send(host.node_id, forged_snapshot(mallory.session))
    gone = await next_event(ann, StateChanged, lambda e: mallory.node_id not in e.state.members)
    assert "no proof that" in caplog.text
    state = host.replica.state
    assert (state.title, state.epoch, state.authority) == ("Under attack", 0, host.node_id)
    assert ann.node_id in gone.state.members and not state.blocked
    assert host.replica.hash() != before  # only the drop of Mallory changed the room
    await _still_serving(host, ann, "after the forgery")
