"""Browser guests in memory: a guest's own signed requests through its gateway (docs/DESIGN.md 5b).

The guest's key signs; the gateway only passes the bytes on.  These tests play the page's part
with an :class:`Identity` that no session holds, as a browser's WebCrypto key would be.
"""

from __future__ import annotations

from typing import Any

import pytest

from p2pspaces.core import wire
from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import ChatReceived, GuestRefused
from p2pspaces.core.identity import Identity
from p2pspaces.core.lifecycle import Phase
from p2pspaces.core.room import Role
from p2pspaces.core.session import RoomSession
from p2pspaces.core.wire import Action, ActionKind

from .kit import FakeNet, hashes

K = ActionKind


class Page:
    """A browser guest: a key of its own, and the gateway its page talks to."""

    def __init__(self, net: FakeNet, gateway: RoomSession) -> None:
        self.key = Identity.generate()
        self.net = net
        self.gateway = gateway
        self.counter = 0

    @property
    def me(self) -> bytes:
        return self.key.node_id

    def sign(self, message: wire.Message) -> bytes:
        return wire.seal_bytes(self.key, message)

    def request(self, kind: ActionKind, target: bytes | None = None, text: str = "") -> None:
        state = self.gateway.state
        assert state is not None
        request = wire.Request(state.room_id, self.next(), Action(kind, target, text), state.epoch)  # type: ignore[arg-type]
        self.send(self.sign(request))

    def next(self) -> int:
        """The page's rising counter (one for its requests, chat lines and reactions)."""
        self.counter += 1
        return self.counter

    def send(self, data: bytes) -> None:
        self.gateway.relay_guest(self.key.node_id, data, self.net.now)
        self.net.pump(self.gateway)

    def join(self, name: str = "Gus") -> None:
        self.request(K.JOIN, self.gateway.me, name)
        self.net.settle(0.3)


def _room() -> tuple[FakeNet, RoomSession, RoomSession, RoomSession]:
    net = FakeNet()
    hana, lee, sam = net.add("Hana"), net.add("Lee"), net.add("Sam")
    net.room(hana, lee, sam)
    net.settle(0.3)
    return net, hana, lee, sam


@pytest.mark.parametrize("through_host", [False, True])
def test_a_guest_joins_chats_raises_a_hand_and_speaks_through_its_gateway(
    through_host: bool,
) -> None:
    net, hana, lee, sam = _room()
    gateway = hana if through_host else lee
    gus = Page(net, gateway)
    gus.join()
    for session in (hana, lee, sam):
        member = session.state.members[gus.me]  # type: ignore[union-attr, index]
        assert (member.name, member.gateway) == ("Gus", gateway.me)
    gus.send(gus.sign(wire.Chat(hana.state.room_id, gus.next(), "hello from a phone")))  # type: ignore[union-attr]
    net.settle(0.2)
    assert [c.text for c in net.seen(sam, ChatReceived)] == ["hello from a phone"]
    assert net.seen(sam, ChatReceived)[0].author == gus.me
    gus.request(K.RAISE_HAND)
    net.settle(0.2)
    hana.request(Action(K.ACCEPT_HAND, gus.me), net.now)  # type: ignore[arg-type]
    net.pump(hana)
    net.settle(0.3)
    assert sam.may_speak(gus.me)
    # Sam hears Gus through the gateway: the gateway is a voice link, Gus is not dialed.
    assert gateway.me in sam.linking.wanted() or sam.me in gateway.linking.wanted()
    assert gus.me not in sam.linking.wanted() | hana.linking.wanted()
    assert len(hashes(hana, lee, sam)) == 1


def test_a_guest_cannot_do_what_its_role_forbids_and_hears_why() -> None:
    net, hana, lee, _sam = _room()
    gus = Page(net, lee)
    gus.join()
    gus.request(K.MUTE, hana.me)
    net.settle(0.2)
    refused = net.seen(lee, GuestRefused)
    assert [(r.guest, r.code) for r in refused] == [(gus.me, "refused")]
    assert "only the host or a co-host" in refused[0].reason


def test_a_gateway_cannot_forge_or_relay_for_a_guest_it_does_not_serve() -> None:
    net, hana, lee, sam = _room()
    gus = Page(net, lee)
    gus.join()
    before = hana.state
    # Sam passes on Gus's genuinely signed request: Gus is Lee's guest, not Sam's.
    request = gus.sign(wire.Request(before.room_id, 9, Action(K.RAISE_HAND)))  # type: ignore[union-attr]
    with pytest.raises(CommandError, match="not a guest of this node"):
        sam.relay_guest(gus.key.node_id, request, net.now)
    sam._ctx.send(hana.me, request)
    net.pump(sam)
    net.settle(0.2)
    assert hana.state.members[gus.me].hand == 0  # type: ignore[union-attr, index]
    # Lee cannot sign as Gus: the signature is checked against Gus's key.
    forged = wire.seal_bytes(lee._ctx.identity, wire.Request(before.room_id, 10, Action(K.LEAVE)))  # type: ignore[union-attr]
    with pytest.raises(CommandError, match="signed by an unexpected key"):
        lee.relay_guest(gus.key.node_id, forged, net.now)
    assert gus.me in hana.state.members  # type: ignore[union-attr]


def test_guests_leave_with_their_gateway_and_when_their_page_goes() -> None:
    net, hana, lee, sam = _room()
    gus, gia = Page(net, lee), Page(net, sam)
    gus.join("Gus")
    gia.join("Gia")
    sam.drop_guest(gia.key.node_id, net.now)
    net.pump(sam)
    net.settle(0.3)
    assert gia.me not in hana.state.members  # type: ignore[union-attr]
    lee.leave(net.now)
    net.pump(lee)
    net.settle(0.5)
    assert gus.me not in hana.state.members  # type: ignore[union-attr]
    assert len(hashes(hana, sam)) == 1


def test_a_blocked_guest_cannot_come_back_through_another_gateway() -> None:
    net, hana, lee, sam = _room()
    gus = Page(net, lee)
    gus.join()
    hana.request(Action(K.BLOCK, gus.me), net.now)  # type: ignore[arg-type]
    net.pump(hana)
    net.settle(0.3)
    assert gus.me not in hana.state.members  # type: ignore[union-attr]
    gus.gateway = sam
    gus.join()
    refused = net.seen(sam, GuestRefused)
    assert refused and "blocked" in refused[-1].reason
    assert gus.me not in hana.state.members  # type: ignore[union-attr]
    assert hana.state.members[lee.me].role is Role.LISTENER  # type: ignore[union-attr]


def _replay(net: FakeNet, gateway: RoomSession, authority: RoomSession, data: bytes) -> None:
    """A gateway running modified code passes on bytes its guest signed earlier."""
    net._deliver(gateway.me, authority.me, data)
    net.settle(0.2)


def test_a_gateway_cannot_replay_or_reorder_what_its_guest_signed() -> None:
    net, hana, lee, _ = _room()
    gus = Page(net, lee)
    gus.join()
    state = hana.state
    assert state is not None
    sent: list[bytes] = []

    def signed(kind: ActionKind, target: bytes | None = None) -> bytes:
        request = wire.Request(state.room_id, gus.next(), Action(kind, target), state.epoch)  # type: ignore[arg-type]
        sent.append(gus.sign(request))
        return sent[-1]

    def send(data: bytes) -> None:
        gus.send(data)
        net.settle(0.2)

    def me() -> Any:
        return hana.state.members[gus.me]  # type: ignore[union-attr, index]

    hana_invites = Action(K.INVITE_SPEAKER, gus.me)
    hana.request(hana_invites, net.now)
    net.pump(hana)
    net.settle(0.2)
    send(signed(K.ACCEPT_INVITE))
    send(signed(K.MUTE, gus.me))
    unmute = signed(K.UNMUTE, gus.me)
    send(unmute)
    send(signed(K.MUTE, gus.me))
    _replay(net, lee, hana, unmute)  # the old unmute after the guest muted itself
    assert me().muted
    raise_hand = signed(K.RAISE_HAND)
    send(raise_hand)
    send(signed(K.LOWER_HAND))
    _replay(net, lee, hana, raise_hand)  # the old raise after the guest lowered it
    assert me().hand == 0
    old_join = gus.sign(  # the very bytes Page.join signed (Ed25519 signs deterministically)
        wire.Request(state.room_id, 1, Action(K.JOIN, lee.me, "Gus"), state.epoch)  # type: ignore[arg-type]
    )
    send(signed(K.LEAVE))
    assert gus.me not in hana.state.members  # type: ignore[union-attr]
    _replay(net, lee, hana, old_join)  # the old join after the guest left
    assert gus.me not in hana.state.members  # type: ignore[union-attr]
    stale = [r for r in net.seen(lee, GuestRefused) if r.code == "stale"]
    assert len(stale) == 3
    assert all("replayed or out of order" in r.reason for r in stale)
    assert not net.penalized  # a stale message may be an honest race: refused, not punished


def test_a_guest_message_signed_in_an_older_epoch_is_refused_after_a_takeover() -> None:
    net = FakeNet()
    hana, cody, lee = net.add("Hana"), net.add("Cody"), net.add("Lee")
    net.room(hana, cody, lee)
    net.act(hana, K.ADD_COHOST, cody)
    net.settle(0.3)
    gus = Page(net, lee)
    gus.join()
    state = cody.state
    assert state is not None
    old = gus.sign(wire.Request(state.room_id, gus.next(), Action(K.RAISE_HAND), state.epoch))  # type: ignore[arg-type]
    net.crash(hana)
    net.run_until(lambda: cody.phase is Phase.AUTHORITY, limit=8)
    net.settle(1.0)
    _replay(net, lee, cody, old)
    assert cody.state.members[gus.me].hand == 0  # type: ignore[union-attr, index]
    refused = [r for r in net.seen(lee, GuestRefused) if r.code == "stale"]
    assert refused and "the room is in epoch 1" in refused[0].reason
    gus.request(K.RAISE_HAND)  # the page, told the new epoch, signs afresh: taken
    net.settle(0.3)
    assert cody.state.members[gus.me].hand > 0  # type: ignore[union-attr, index]
