"""The wire format: round trips for every message, strict decoding, signed envelopes."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pspaces.core import codec, wire
from p2pspaces.core.codec import Bool, Bytes, Choice, Int, ListOf, Nested, Optional, Spec, Text
from p2pspaces.core.errors import WireError
from p2pspaces.core.wire import Action, ActionKind, Chat, Error, Hello, Signed, Update

from .kit import person

_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def strategy(kind: Spec) -> st.SearchStrategy[Any]:
    """A hypothesis strategy for any valid value of a field spec."""
    if isinstance(kind, Bytes):
        return st.binary(min_size=kind.min, max_size=min(kind.max, kind.min + 64))
    if isinstance(kind, Text):
        chars = st.characters(
            blacklist_categories=("Cc", "Cs"), blacklist_characters=_BIDI
        ) | st.sampled_from(kind.controls or "a")
        return st.text(chars, min_size=kind.min_chars, max_size=min(kind.max_chars, 40))
    if isinstance(kind, Int):
        return st.integers(kind.lo, kind.hi)
    if isinstance(kind, Bool):
        return st.booleans()
    if isinstance(kind, Choice):
        return st.sampled_from(list(kind.kind))
    if isinstance(kind, Optional):
        return st.none() | strategy(kind.inner)
    if isinstance(kind, ListOf):
        return st.lists(strategy(kind.item), max_size=min(kind.max, 4)).map(tuple)
    if isinstance(kind, Nested):
        return record_strategy(kind.kind)
    raise AssertionError(kind)


def record_strategy(cls: type[Any]) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{name: strategy(kind) for name, kind in cls.FIELDS})


any_message = st.one_of([record_strategy(cls) for cls in wire.MESSAGE_TYPES.values()])


@settings(max_examples=400)
@given(any_message)
def test_decode_inverts_encode_for_every_message_type(message: wire.Message) -> None:
    assert wire.decode(wire.encode(message)) == message


@settings(max_examples=1000)
@given(st.binary(max_size=512))
def test_decoding_random_bytes_only_raises_the_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode(data)


@settings(max_examples=300)
@given(any_message, st.data())
def test_decoding_a_mutated_message_only_raises_the_wire_error(
    message: wire.Message, data: st.DataObject
) -> None:
    encoded = bytearray(wire.encode(message))
    index = data.draw(st.integers(0, len(encoded) - 1))
    encoded[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(WireError):
        wire.decode(bytes(encoded))


def _packed(**fields: Any) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


CHAT = {
    "v": codec.PROTOCOL_VERSION,
    "t": "chat",
    "room_id": b"r" * 32,
    "chat_id": 1,
    "text": "hi",
    "epoch": 0,
}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({**CHAT, "extra": 1}, r"unknown fields \['extra'\]"),
        ({k: v for k, v in CHAT.items() if k != "text"}, r"missing fields \['text'\]"),
        ({**CHAT, "v": 1}, "unsupported protocol version 1"),
        ({**CHAT, "t": "bogus"}, "unknown message type 'bogus'"),
        ({**CHAT, "room_id": b"r" * 31}, r"Chat.room_id: length 31 not in 32..32"),
        ({**CHAT, "chat_id": -1}, "Chat.chat_id: -1 not in"),
        ({**CHAT, "chat_id": True}, "Chat.chat_id: expected an integer"),
        ({**CHAT, "text": "x" * 501}, "Chat.text: 501 characters"),
        ({**CHAT, "text": "\x1b[2J"}, "control character U\\+001B"),
        ({**CHAT, "text": "abc\u202edef"}, "control character U\\+202E"),
        ({**CHAT, "text": b"bytes"}, "Chat.text: expected text"),
    ],
)
def test_decode_refuses_bad_fields_with_a_reason(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        wire.decode(_packed(**fields))


def test_oversize_frame_is_refused_before_decoding() -> None:
    with pytest.raises(WireError, match="exceeds the 100-byte cap"):
        wire.decode(b"\x00" * 101, max_size=100)
    # A header that claims 2 GiB in a tiny frame: msgpack's own limits refuse it.
    with pytest.raises(WireError, match="malformed msgpack"):
        wire.decode(b"\xc6" + (2**31).to_bytes(4, "big"))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",
        b"\x91\x01",
        b"\xdd\xff\xff\xff\xff",
        b"\x80" * 3,
        b"\x91" * 5000,
        b"\xd6\xff" + b"\x00" * 4,
    ],
)
def test_malformed_msgpack_is_a_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        wire.decode(data)


def test_a_message_with_trailing_bytes_is_refused() -> None:
    data = wire.encode(Error("x", "y")) + b"\x00"
    with pytest.raises(WireError, match="malformed msgpack: ExtraData"):
        wire.decode(data)


def test_caller_mistakes_raise_value_error_when_building() -> None:
    with pytest.raises(ValueError, match=r"Hello\.nonce: length 3"):
        Hello(person(1).node_id, "me", b"abc")
    with pytest.raises(ValueError, match=r"Action\.kind: unknown ActionKind"):
        Action("fly")  # type: ignore[arg-type]


def _update() -> Update:
    return Update(
        b"r" * 32, 0, 1, b"h" * 32, person(2).node_id, Action(ActionKind.RAISE_HAND), b"s" * 32
    )  # type: ignore[arg-type]


def test_signed_envelope_verifies_the_exact_bytes() -> None:
    alice = person(1)
    envelope, inner = wire.open_signed_bytes(
        wire.seal_bytes(alice, _update()), Update, alice.node_id
    )
    assert inner == _update()
    assert envelope.signer == alice.node_id


def test_signature_covers_the_domain_prefix() -> None:
    alice = person(1)
    payload = wire.encode(_update())
    undomained = Signed(alice.node_id, payload, alice.private_key.sign(payload))
    with pytest.raises(WireError, match="bad signature"):
        wire.open_signed(undomained)


@settings(max_examples=200)
@given(st.data())
def test_any_flipped_byte_in_a_signed_message_is_refused(data: st.DataObject) -> None:
    alice = person(1)
    sealed = bytearray(wire.seal_bytes(alice, _update()))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(WireError):
        wire.open_signed_bytes(bytes(sealed), Update, alice.node_id)


def test_envelope_from_an_unexpected_signer_is_refused() -> None:
    mallory = person(66)
    with pytest.raises(WireError, match="signed by an unexpected key"):
        wire.open_signed_bytes(wire.seal_bytes(mallory, _update()), Update, person(1).node_id)


def test_wrong_inner_type_is_refused() -> None:
    alice = person(1)
    chat = Chat(b"r" * 32, 1, "hello")  # type: ignore[arg-type]
    with pytest.raises(WireError, match="expected update, got chat"):
        wire.open_signed_bytes(wire.seal_bytes(alice, chat), Update)


def test_nested_envelope_is_refused() -> None:
    alice = person(1)
    inner = wire.seal(alice, _update())
    with pytest.raises(WireError, match="nested envelope"):
        wire.open_signed(wire.seal(alice, inner))


def test_codec_limits_are_what_the_docs_say() -> None:
    assert codec.MAX_FRAME == 4 * 1024 * 1024
    assert wire.NAME_MAX == 32
    assert wire.CHAT_MAX == 500
