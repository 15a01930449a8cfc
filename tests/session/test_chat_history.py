"""A late joiner gets the room's last chat lines; a rejoin does not repeat them; nobody but the
authority can hand out a history, and nobody can put words in an author's mouth through it."""

from __future__ import annotations

import logging

import pytest

from p2pspaces.core import wire
from p2pspaces.core.events import ChatReceived
from p2pspaces.core.session import Phase
from p2pspaces.core.wire import ActionKind

from .byzantine import sign_raw
from .kit import FakeNet


def test_a_late_joiner_gets_the_last_lines_once_and_in_order() -> None:
    net = FakeNet()
    hana, ann, bob = net.add("Hana"), net.add("Ann"), net.add("Bob")
    net.room(hana, ann)
    for i in range(wire.HISTORY_MAX + 3):
        hana.chat(f"line {i}", net.now)
        net.pump(hana)
        net.run(1.0)  # within the chat rate
    net.join(bob, hana)
    net.settle(0.3)
    earlier = [e.text for e in net.seen(bob, ChatReceived) if e.earlier]
    assert earlier == [f"line {i}" for i in range(3, wire.HISTORY_MAX + 3)]
    # Ann leaves and comes back: what she saw is not repeated; what was said meanwhile is.
    ann.leave(net.now)
    net.pump(ann)
    net.settle(0.5)
    assert ann.phase is not Phase.MEMBER and ann.me not in hana.state.members  # type: ignore[union-attr]
    hana.chat("while Ann was out", net.now)
    net.pump(hana)
    net.run(1.0)
    net.join(ann, hana)
    net.settle(0.5)
    assert ann.phase is Phase.MEMBER
    assert [e.text for e in net.seen(ann, ChatReceived) if e.earlier] == ["while Ann was out"]
    hana.chat("after", net.now)
    net.pump(hana)
    net.settle(0.3)
    assert [e.text for e in net.seen(bob, ChatReceived)][-1] == "after"


def test_only_the_authority_hands_out_history_and_every_line_is_its_authors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "p2pspaces.session")
    net = FakeNet()
    hana, ann, mal = net.add("Hana"), net.add("Ann"), net.add("Mal")
    net.room(hana, ann, mal)
    room = hana.state.room_id  # type: ignore[union-attr]
    # Mal's own line is genuine, but Mal is not the authority: the history is refused.
    line = wire.seal_bytes(mal._ctx.identity, wire.Chat(room, 1, "I am the host now"))
    ann.receive(mal.me, wire.encode(wire.History(room, (line,))), net.now)
    assert "chat history not from the room's authority" in caplog.text
    # Lines in a history must verify: a line claiming Hana's key but signed by Mal is refused.
    forged = sign_raw(mal._ctx.identity, "chat", {"room_id": room, "chat_id": 2, "text": "x"})
    forged = forged.replace(mal.me, hana.me)
    ann.receive(hana.me, wire.encode(wire.History(room, (forged,))), net.now)
    assert "bad line in the chat history" in caplog.text
    assert not [e for e in net.seen(ann, ChatReceived) if e.earlier]
    net.act(ann, ActionKind.RAISE_HAND)
    net.settle(0.3)
    assert ann.state.members[ann.me].hand  # type: ignore[union-attr]  # Ann is still served
