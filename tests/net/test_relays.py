"""Listeners relaying to listeners, with real nodes on loopback (issue 22): past the direct
limit the authority gives listeners a relay; they hear the speaker through it, the speaker
sends them nothing; a relay that dies, or passes nothing on, is replaced; a relay that alters
the voice is not heard; a browser guest on stage reaches them too, signed by its gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from p2pspaces.audio.devices import ToneSource
from p2pspaces.audio.opus import Encoder
from p2pspaces.audio.relay import Relayed, RelayPath
from p2pspaces.core.events import Joined, Notice
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.relays import RELAY_QUIET_HEARTBEATS
from p2pspaces.core.wire import Action, ActionKind, Request, seal_bytes
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

from .conftest import LOOPBACK, QUICK, next_event

Make = Callable[..., Any]


@pytest.fixture
async def room() -> AsyncIterator[tuple[Node, list[Node]]]:
    """Hana speaks (a tone); one listener hears her straight, three through a relay."""
    nodes: list[Node] = []

    async def make(name: str, **options: Any) -> Node:
        config = NodeConfig(name, interface=LOOPBACK, timing=QUICK, direct_listeners=1)
        node = Node(Identity.generate(), config, **options)
        await node.start()
        nodes.append(node)
        return node

    host = await make("Hana", source=ToneSource(440))
    room_id = await host.host("A big keynote")
    listeners = [await make(name) for name in ("Ann", "Bob", "Cat", "Dan")]
    for listener in listeners:
        await listener.join(room_id.hex()[:8])
        await next_event(listener, Joined)
    try:
        yield host, listeners
    finally:
        await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)


async def _until(check: Callable[[], bool], within: float, what: str) -> float:
    """Wait until ``check()`` holds; returns how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)
    return loop.time() - start


def _received(listener: Node, voice: Any) -> int:
    stream = listener.audio.streams.get(voice.node_id)
    return stream.stats.received if stream is not None else 0


def _via(host: Node, listener: Node) -> bytes | None:
    member = host.replica.state.members.get(listener.node_id)
    return member.via if member is not None else None


async def _hearing(listeners: list[Node], voice: Node, packets: int, within: float) -> float:
    before = {n.node_id: _received(n, voice) for n in listeners}
    return await _until(
        lambda: all(_received(n, voice) - before[n.node_id] >= packets for n in listeners),
        within,
        f"{[n.name for n in listeners]} each get {packets} packets of {voice.name}",
    )


async def test_listeners_past_the_limit_hear_the_speaker_through_a_relay(
    room: tuple[Node, list[Node]],
) -> None:
    host, listeners = room
    first, *rest = listeners
    await _until(
        lambda: all(_via(host, n) == first.node_id for n in rest), 10, "three relayed by Ann"
    )
    assert _via(host, first) is None
    await _until(
        lambda: all(n.replica.state == host.replica.state for n in listeners), 5, "states agree"
    )
    await _hearing(listeners, host, 100, within=10)  # two seconds of her voice, everyone
    # Hana sends to Ann alone; Ann passes each packet on, checked by each of the three.
    sent = {peer: outlet.sent for peer, outlet in host.audio.broadcaster.outlets.items()}
    await asyncio.sleep(1.0)
    outlets = host.audio.broadcaster.outlets
    grew = {peer for peer, outlet in outlets.items() if outlet.sent > sent.get(peer, 0)}
    assert grew == {first.node_id}
    relay = first.audio.relay
    assert relay is not None and relay.forwarded >= 3 * 100
    told = await next_event(first, Notice, lambda e: "passes the speakers on" in e.text, 3)
    assert "--no-relay" in told.text  # Ann is told her laptop relays, and how to opt out
    for listener in rest:
        assert listener.audio.relay is not None and listener.audio.relay.refused == 0
        # A packet or two straight from Hana, sent before she learned of the relay, arrive
        # after the listener did: those are not played (one stream per voice).
        assert listener.audio.refused_packets <= 5
        stream = listener.audio.streams[host.node_id]
        assert stream.stats.played > 50  # decoded and played, not just filed


async def _relayed(room: tuple[Node, list[Node]]) -> tuple[Node, Node, list[Node], RelayPath]:
    """The room once Ann relays Hana to the other three and they hear her: Hana, Ann, the
    three, and Ann's relay path."""
    host, (first, *rest) = room
    await _until(lambda: all(_via(host, n) == first.node_id for n in rest), 10, "relayed")
    await _hearing(rest, host, 50, within=10)
    relay = first.audio.relay
    assert relay is not None
    return host, first, rest, relay


def _vanish(node: Node) -> None:
    """Make a node vanish as a crashed laptop would: nothing more leaves it, on any link."""
    for link in node.mesh.links.values():
        link.channel.send = lambda data: None  # type: ignore[method-assign]
    node.mesh.broadcast = lambda data: None  # type: ignore[method-assign]
    node.audio.relay = None  # and it passes no audio on

    async def unplugged(host: str, port: int) -> None:
        raise OSError("unplugged")

    node.mesh.connect = unplugged  # type: ignore[method-assign,assignment]


async def test_the_listeners_of_a_relay_that_dies_hear_again_within_seconds(
    room: tuple[Node, list[Node]],
) -> None:
    host, first, rest, _ = await _relayed(room)
    _vanish(first)
    # The listeners notice nothing comes through (1.5 s) and ask to hear straight, and the
    # host notices the relay's silence (2.5 heartbeats), both before its link times out.
    gap = await _hearing(rest, host, 25, within=QUICK.peer_timeout_s + 6)
    assert all(_via(host, n) != first.node_id for n in rest)
    # Once Ann is dropped, the room is past its limit again: one of the three relays for the
    # other two, and they still hear Hana.
    await _until(lambda: first.node_id not in host.replica.state.members, 10, "Ann dropped")
    await _until(
        lambda: sum(_via(host, n) is None for n in rest) == 1, 5, "one straight, two relayed"
    )
    await _hearing(rest, host, 50, within=10)
    assert gap < RELAY_QUIET_HEARTBEATS * QUICK.heartbeat_s + 2.5  # measured: 1.9 s


async def test_a_relay_that_alters_the_voice_is_not_heard(
    room: tuple[Node, list[Node]],
) -> None:
    host, _, rest, relay = await _relayed(room)
    honest = relay.forward

    async def altering(packet: Relayed, outlets: Any) -> None:
        data = bytearray(packet.data)
        data[-1] ^= 0xFF  # one bit of the voice changed: words in her mouth
        forged = Relayed(packet.voice, packet.sequence_number, packet.timestamp, b"", bytes(data))
        await honest(forged, outlets)

    relay.forward = altering  # type: ignore[method-assign]
    before = {n.node_id: _received(n, host) for n in rest}
    refused = {n.node_id: n.audio.refused_packets for n in rest}
    await asyncio.sleep(1.5)
    for listener in rest:
        assert _received(listener, host) == before[listener.node_id]
        assert listener.audio.refused_packets - refused[listener.node_id] >= 50


async def test_a_relay_that_passes_nothing_on_loses_its_listeners(
    room: tuple[Node, list[Node]],
) -> None:
    host, first, rest, relay = await _relayed(room)

    async def nothing(packet: Relayed, outlets: Any) -> None:
        return None  # still linked, still heartbeating: only the audio is kept back

    relay.forward = nothing  # type: ignore[method-assign]
    # Each listener notices after 3 s of nothing while Hana speaks, asks to hear straight; the
    # host (hearing its own voice go out) agrees and gives Ann no one new for a while.
    told = [next_event(n, Notice, lambda e: "Nothing came through" in e.text) for n in rest]
    await asyncio.gather(*told)
    await _hearing(rest, host, 50, within=10)
    await _until(
        lambda: all(_via(host, n) != first.node_id for n in rest), 5, "none relayed by Ann"
    )
    assert first.node_id in host.session.authority.relays.benched


async def test_a_browser_guest_on_stage_reaches_listeners_behind_a_relay(
    room: tuple[Node, list[Node]],
) -> None:
    host, _, rest, relay = await _relayed(room)
    # A phone's page joins through the host's node (its gateway) and comes on stage; its own
    # key signs its requests, as a browser's would.
    page, counter = Identity.generate(), [0]
    state = host.session.state
    assert state is not None

    def ask(kind: ActionKind, target: bytes | None = None, text: str = "") -> None:
        counter[0] += 1
        action = Action(kind, NodeId(target) if target else None, text)
        request = Request(state.room_id, counter[0], action, state.epoch)
        host.guests.relay(NodeId(page.node_id), seal_bytes(page, request))

    ask(ActionKind.JOIN, host.node_id, "Gus")
    await host.request(Action(ActionKind.INVITE_SPEAKER, NodeId(page.node_id)))
    await asyncio.sleep(0.3)
    ask(ActionKind.ACCEPT_INVITE)
    await _until(lambda: host.session.may_speak(page.node_id), 5, "Gus on stage")
    await _until(lambda: all(n.session.may_speak(page.node_id) for n in rest), 5, "all know")
    # The page's voice, as the gateway receives it: two seconds of Opus at 50 packets a
    # second, starting at a browser's random timestamp.
    passed_on: list[bytes] = []
    honest = relay.forward

    async def counting(packet: Relayed, outlets: Any) -> None:
        passed_on.append(packet.voice)
        await honest(packet, outlets)

    relay.forward = counting  # type: ignore[method-assign]
    encoder, start = Encoder(), 123_456_789
    frames = ToneSource(330).frames()
    for i in range(100):
        pcm = await frames.__anext__()
        packet = Relayed(page.node_id, i, start + 960 * i, encoder.encode(pcm), b"")
        await host.guests.voice(NodeId(page.node_id), packet)
    await asyncio.sleep(0.3)
    for listener in rest:  # through Ann (once: not also on the host's voice channel)
        assert 90 <= _received(listener, Gus(page.node_id)) <= 100, listener.name
        assert listener.audio.relay is not None and listener.audio.relay.refused == 0
    assert passed_on.count(page.node_id) >= 90  # signed by the host for its guest


class Gus:
    """A voice that is not a node: what :func:`_received` needs."""

    def __init__(self, key: bytes) -> None:
        self.node_id = key
