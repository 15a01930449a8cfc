"""The guest protocol in memory: what a page may send, how it proves its key, and the table of
guests (no sockets: :mod:`p2pspaces.web.protocol` has no I/O)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from p2pspaces.core import room
from p2pspaces.core.events import StateChanged
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.web.protocol import (
    DOMAIN_WEB,
    Bye,
    Gone,
    GuestBook,
    Heard,
    Hello,
    Offer,
    PageCode,
    PageError,
    Volume,
    parse_frame,
    proven_key,
)

GATEWAY = Identity.generate()


@dataclass(eq=False)
class Tab:
    key: NodeId | None = None
    bye: bool = False


def _refused(text: str, proven: bool = True) -> PageError:
    with pytest.raises(PageError) as caught:
        parse_frame(text, proven)
    return caught.value


def test_a_page_is_told_exactly_what_is_wrong_with_its_frame() -> None:
    assert _refused("{oops").reason == "not JSON"
    assert "needs a type" in _refused(json.dumps({"key": "ab"})).reason  # JSON, but no type
    assert "needs a type" in _refused(json.dumps([1, 2])).reason
    assert _refused(json.dumps({"t": "offer", "sdp": "v=0"}), proven=False).reason == (
        "offer before hello"
    )
    assert _refused(json.dumps({"t": "dance"})).reason == "unexpected dance"
    for bad in (
        {"t": "hello", "key": "zz", "sig": "00"},
        {"t": "offer", "sdp": 5},
        {"t": "volume", "id": "ab" * 32, "gain": "loud"},
        {"t": "volume", "id": "ab" * 32, "gain": True},
        {"t": "volume", "id": "ab" * 31, "gain": 1.0},
        {"t": "heard", "level": "loud"},
        {"t": "heard", "level": None},
    ):
        error = _refused(json.dumps(bad))
        assert error.code is PageCode.BAD_MESSAGE and error.reason.startswith("a malformed")
    assert _refused('{"t": "volume", "id": "' + "ab" * 32 + '", "gain": NaN}').code is (
        PageCode.BAD_MESSAGE
    )


def test_the_frames_a_page_may_send() -> None:
    source = os.urandom(32)
    assert parse_frame(json.dumps({"t": "bye"}), proven=True) == Bye()
    assert parse_frame(json.dumps({"t": "offer", "sdp": "v=0"}), proven=True) == Offer("v=0")
    volume = parse_frame(json.dumps({"t": "volume", "id": source.hex(), "gain": 2}), True)
    assert volume == Volume(NodeId(source), 2.0)
    assert parse_frame(json.dumps({"t": "heard", "level": -23.5}), True) == Heard(-23.5)
    assert parse_frame(json.dumps({"t": "heard", "level": -900}), True) == Heard(-127.0)
    hello = parse_frame(json.dumps({"t": "hello", "key": "ab", "sig": "cd"}), proven=False)
    assert hello == Hello(b"\xab", b"\xcd")


def test_a_page_proves_its_own_key_for_this_gateway_only() -> None:
    guest, other_gateway = Identity.generate(), Identity.generate()
    challenge = os.urandom(32)
    signed = guest.sign(DOMAIN_WEB, challenge + GATEWAY.node_id)
    assert proven_key(Hello(guest.node_id, signed), challenge, GATEWAY.node_id) == guest.node_id
    for hello, gateway in (
        (Hello(guest.node_id, signed), other_gateway.node_id),  # made for another gateway
        (Hello(guest.node_id, guest.sign(DOMAIN_WEB, os.urandom(32))), GATEWAY.node_id),
        (Hello(other_gateway.node_id, signed), GATEWAY.node_id),  # someone else's signature
        (Hello(b"short", signed), GATEWAY.node_id),
    ):
        with pytest.raises(PageError) as caught:
            proven_key(hello, challenge, gateway)
        assert caught.value.code is PageCode.BAD_HELLO
    mine = GATEWAY.sign(DOMAIN_WEB, challenge + GATEWAY.node_id)
    with pytest.raises(PageError, match="that is my key"):
        proven_key(Hello(GATEWAY.node_id, mine), challenge, GATEWAY.node_id)


def test_one_tab_per_guest_and_a_full_gateway_says_so() -> None:
    book: GuestBook[Tab] = GuestBook(GATEWAY.node_id, max_guests=2, grace_s=20)
    gus = NodeId(os.urandom(32))
    first, second = Tab(), Tab()
    for tab in (first, second):
        book.opened(tab)
    assert book.proven(first, gus) is None
    assert book.proven(second, gus) is first  # the newer tab wins; the older is closed
    assert book.guests == {gus: second} and book.serving == 1
    assert book.closed(first) is False  # closing the old tab does not touch the new one
    assert book.guests == {gus: second}
    assert book.full() is None
    other = Tab()
    book.opened(other)
    book.proven(other, NodeId(os.urandom(32)))
    assert book.full() == "this node already serves 2 guests, its limit"


def test_a_vanished_page_keeps_its_place_for_the_grace_and_a_closed_tab_does_not() -> None:
    book: GuestBook[Tab] = GuestBook(GATEWAY.node_id, max_guests=5, grace_s=20)
    gus, gia = NodeId(os.urandom(32)), NodeId(os.urandom(32))
    wifi, closing, back = Tab(), Tab(), Tab()
    for tab, key in ((wifi, gus), (closing, gia)):
        book.opened(tab)
        book.proven(tab, key)
    closing.bye = True
    assert book.gone(closing, in_room=True) is Gone.DROP
    assert book.gone(wifi, in_room=True) is Gone.GRACE
    assert book.grace_over(gia) is False  # dropped already, nothing waits
    book.opened(back)
    book.proven(back, gus)  # the phone came back within the grace
    assert book.grace_over(gus) is False
    assert book.gone(back, in_room=True) is Gone.GRACE
    assert book.grace_over(gus) is True  # this time it did not come back
    assert book.gone(Tab(), in_room=True) is Gone.NOTHING  # never proven
    out = Tab()
    book.opened(out)
    book.proven(out, gia)
    assert book.gone(out, in_room=False) is Gone.NOTHING  # not in the room: nothing to keep


def test_a_guest_put_out_by_a_change_is_told_why_and_others_are_not() -> None:
    host = Identity.generate()
    state = room.initial_state(
        room.genesis_record(host, "Hana", "Guests", created_ms=1, nonce=os.urandom(16))
    )
    gus, gia = Identity.generate().node_id, Identity.generate().node_id
    for guest, name in ((gus, "Gus"), (gia, "Gia")):
        state = room.apply(state, guest, Action(ActionKind.JOIN, GATEWAY.node_id, name))
    book: GuestBook[Tab] = GuestBook(GATEWAY.node_id, max_guests=5, grace_s=20)
    tabs = {gus: Tab(), gia: Tab()}
    for key, tab in tabs.items():
        book.opened(tab)
        book.proven(tab, key)
    blocked = room.apply(state, host.node_id, Action(ActionKind.BLOCK, gus))
    change = StateChanged(blocked, host.node_id, Action(ActionKind.BLOCK, gus))
    assert book.put_out(change) == [(tabs[gus], "blocked from this Space by a host", "block")]
    left = room.apply(state, gia, Action(ActionKind.LEAVE))
    assert book.put_out(StateChanged(left, gia, Action(ActionKind.LEAVE))) == [
        (tabs[gia], "you left the Space", "leave")
    ]
    assert book.put_out(StateChanged(blocked)) == []  # a snapshot names no one


def test_a_page_cannot_make_its_gateway_flood_the_speakers_with_reports() -> None:
    book: GuestBook[Tab] = GuestBook(GATEWAY.node_id, max_guests=5, grace_s=20)
    gus = NodeId(os.urandom(32))
    tab = Tab()
    book.opened(tab)
    assert book.may_report(gus, 0.0) is False  # not a guest (yet)
    book.proven(tab, gus)
    passed = [now for now in [n * 0.05 for n in range(100)] if book.may_report(gus, now)]
    assert 5 <= len(passed) <= 6  # 5 s of 20 reports a second: about one a second goes on
