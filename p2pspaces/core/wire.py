"""Every message p2pspaces sends, its msgpack encoding, and the signed envelope.

``encode(message) -> bytes`` and ``decode(bytes) -> message`` are exact inverses for every
message type; ``decode`` checks the frame size before decoding, applies msgpack's length limits,
and refuses unknown or missing fields, out-of-range values and unknown types with a
:class:`~p2pspaces.core.errors.WireError` carrying the reason.  Nothing else escapes.

Signed messages travel inside a :class:`Signed` envelope: ``signer`` (32-byte key), ``payload``
(the exact encoded bytes of the inner message) and ``signature`` over
``DOMAIN_MESSAGE + payload``.  :func:`open_signed` verifies the signature over the bytes as
received *before* decoding the payload, and never re-serialises anything to verify it.

Message types (docs/DESIGN.md sections 3-4):

========== ============================================================ =========
type       purpose                                                      signed by
========== ============================================================ =========
hello      signaling handshake: who I am and a challenge nonce          -
response   signaling handshake: my signature over your challenge        -
offer      SDP offer, bound to both keys and the DTLS fingerprint       offerer
answer     SDP answer, echoing the offer's nonce                        answerer
genesis    a room's birth record; the room id is its hash               host
request    a member asks the authority for an action                    member
update     the authority's change number ``seq`` in ``epoch``           authority
snapshot   the whole state, for joiners and for repair                  authority
vote_req   a co-host asks the authority set for a takeover vote         candidate
vote       a granted vote for (epoch, candidate)                        voter
takeover   a claim of the next epoch, carrying its votes                claimant
mandate    one link of a snapshot's proof of authority (custody)        -
heartbeat  liveness on the control channel                              sender
resync     a member asks for a snapshot                                 -
redirect   a hint: the room's authority is now another node             -
contact    where a node listens (addresses, signaling port)             that node
contacts   signed contacts, relayed by the authority (at most 64)       -
chat       a chat line                                                  author
reaction   an emoji reaction from the fixed set                         author
error      a refusal with its reason                                    -
signed     the envelope                                                 -
========== ============================================================ =========
"""

from __future__ import annotations

import enum
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any, NewType

from p2pspaces.core import codec
from p2pspaces.core.codec import (
    Bool,
    Bytes,
    Choice,
    Int,
    ListOf,
    Nested,
    Optional,
    Record,
    Text,
    record,
    spec,
)
from p2pspaces.core.errors import WireError
from p2pspaces.core.identity import NODE_ID_SIZE, SIGNATURE_SIZE, Identity, NodeId, verify

RoomId = NewType("RoomId", bytes)
"""SHA-256 of a room's signed genesis envelope."""

DOMAIN_MESSAGE = b"p2pspaces/1 signed message\x00"
DOMAIN_HANDSHAKE = b"p2pspaces/1 signaling handshake\x00"

HASH_SIZE = 32
NONCE_SIZE = 16
NAME_MAX = 32
TITLE_MAX = 100
CHAT_MAX = 500
HISTORY_MAX = 20
"""Chat lines a joiner is given from before it joined."""
CHAT_ENVELOPE_MAX = 4 * CHAT_MAX + 256
"""A signed chat line's bytes at most (UTF-8's four bytes a character, the signature, ids)."""


def too_long(what: str, text: str, most: int) -> str | None:
    """Why ``text`` cannot be sent (``what``: "The title"), in words; None if it fits.  Text
    is refused whole, never cut: a person should know what the others will read."""
    if len(text) > most:
        return f"{what} is {len(text)} characters long; the most is {most}."
    return None


def visible(text: str) -> bool:
    """Whether ``text`` has a character people can see: not only spaces, combining marks or
    invisible format characters (a name of zero-width spaces would show as a blank member)."""
    return any(unicodedata.category(c)[0] not in "CZM" for c in text)


SDP_MAX = 16_000
REASON_MAX = 200
ADDRESS_MAX = 45
ADDRESSES_MAX = 4
CONTACT_MAX = 512
CONTACTS_PER_MESSAGE = 64
U32 = 2**32 - 1
U63 = 2**63 - 1
COUNTER_MAX = 2**48
"""The largest epoch or seq a peer may send: no honest room comes near it (a change a
millisecond for 8,900 years), and adding one to it never overflows a field."""
MANDATE_MAX = 4096
"""One link of a proof of authority: a state header, its attestation and a claim with votes."""
CUSTODY_MAX = 64
"""Links in a proof of authority: co-host terms since the host last held its room."""

_KEY = Bytes(NODE_ID_SIZE, NODE_ID_SIZE)
_HASH = Bytes(HASH_SIZE, HASH_SIZE)
_NONCE = Bytes(NONCE_SIZE, NONCE_SIZE)
_COUNTER = Int(0, U63)
_EPOCH = Int(0, COUNTER_MAX)


class ActionKind(enum.StrEnum):
    """Every change a room's state can undergo (docs/DESIGN.md section 3)."""

    # Enum hashes a member by its name in Python; as the string it equals, at C speed (the
    # rules look kinds up several times per update).
    __hash__ = str.__hash__

    JOIN = "join"
    LEAVE = "leave"
    RAISE_HAND = "raise_hand"
    LOWER_HAND = "lower_hand"
    INVITE_SPEAKER = "invite_speaker"
    ACCEPT_INVITE = "accept_invite"
    DECLINE_INVITE = "decline_invite"
    ACCEPT_HAND = "accept_hand"
    MAKE_LISTENER = "make_listener"
    MUTE = "mute"
    UNMUTE = "unmute"
    REMOVE = "remove"
    BLOCK = "block"
    DROP = "drop"
    ADD_COHOST = "add_cohost"
    REMOVE_COHOST = "remove_cohost"
    SET_TITLE = "set_title"
    SET_RECORDING = "set_recording"
    END = "end"
    RELAY = "relay"
    """The authority names the listener node that forwards the voices to a listener (its
    ``via``; None: straight again)."""


class Emoji(enum.StrEnum):
    """The fixed set of reactions."""

    CLAP = "👏"
    HEART = "❤️"
    LAUGH = "😂"
    HUNDRED = "💯"
    RAISED = "🙌"
    THINKING = "🤔"
    FIRE = "🔥"
    WAVE = "👋"


@record
@dataclass(frozen=True, slots=True)
class Action(Record):
    """One change: what, to whom, with which text (a name or title) or flag, and for
    :attr:`ActionKind.RELAY` through which relay."""

    kind: ActionKind = spec(Choice(ActionKind))
    target: NodeId | None = spec(Optional(_KEY), default=None)
    text: str = spec(Text(TITLE_MAX), default="")
    flag: bool = spec(Bool(), default=False)
    via: NodeId | None = spec(Optional(_KEY), default=None)


class Message(Record):
    """Base of the top-level message types; ``TYPE`` is the name on the wire."""

    __slots__ = ()
    TYPE: str = ""


@record
@dataclass(frozen=True, slots=True)
class Hello(Message):
    """Signaling handshake, first frame each way: my key, my name, a challenge for you."""

    TYPE = "hello"
    node_id: NodeId = spec(_KEY)
    name: str = spec(Text(NAME_MAX))
    nonce: bytes = spec(Bytes(32, 32))


@record
@dataclass(frozen=True, slots=True)
class ChallengeResponse(Message):
    """Signaling handshake, second frame: my signature over your challenge (see signaling)."""

    TYPE = "response"
    signature: bytes = spec(Bytes(SIGNATURE_SIZE, SIGNATURE_SIZE))


@dataclass(frozen=True, slots=True)
class _Description(Message):
    """An SDP description bound to both node keys and every DTLS fingerprint it contains."""

    sender: NodeId = spec(_KEY)
    receiver: NodeId = spec(_KEY)
    nonce: bytes = spec(_NONCE)
    sdp: str = spec(Text(SDP_MAX, controls="\r\n"))
    dtls_fingerprint: str = spec(Text(1000, min_chars=1))


@record
@dataclass(frozen=True, slots=True)
class Offer(_Description):
    """An SDP offer; ``nonce`` is fresh."""

    TYPE = "offer"


@record
@dataclass(frozen=True, slots=True)
class Answer(_Description):
    """An SDP answer; ``nonce`` echoes the offer's."""

    TYPE = "answer"


@record
@dataclass(frozen=True, slots=True)
class Genesis(Message):
    """A room's birth record, signed by its host."""

    TYPE = "genesis"
    host: NodeId = spec(_KEY)
    host_name: str = spec(Text(NAME_MAX, min_chars=1))
    title: str = spec(Text(TITLE_MAX, min_chars=1))
    created_ms: int = spec(_COUNTER)
    nonce: bytes = spec(_NONCE)
    max_speakers: int = spec(Int(0, 100))
    max_cohosts: int = spec(Int(0, 2))


@record
@dataclass(frozen=True, slots=True)
class Request(Message):
    """A member asks the authority for an action; ``req_id`` ties a refusal to it.

    ``req_id`` is the signer's rising counter and ``epoch`` the epoch it was signed in: what
    proves a request passed on by a relay is not a replay (:class:`p2pspaces.core.limits.
    Freshness`)."""

    TYPE = "request"
    room_id: RoomId = spec(_HASH)
    req_id: int = spec(_COUNTER)
    action: Action = spec(Nested(Action))
    epoch: int = spec(_EPOCH, default=0)


@record
@dataclass(frozen=True, slots=True)
class Update(Message):
    """The authority's change ``seq`` of ``epoch``, chained to the state it applies to."""

    TYPE = "update"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    seq: int = spec(_EPOCH)
    prev_hash: bytes = spec(_HASH)
    actor: NodeId = spec(_KEY)
    action: Action = spec(Nested(Action))
    state_hash: bytes = spec(_HASH)
    """The hash of the state the change leads to: the update attests that state, which is what
    a co-host's claim to succeed it starts from (:mod:`p2pspaces.core.custody`)."""


@record
@dataclass(frozen=True, slots=True)
class Snapshot(Message):
    """The whole room state, for a joiner or a member that lost its place.

    ``genesis`` is the host's signed genesis envelope (its hash is the room id); ``state`` is the
    canonical encoding of the state.  ``custody`` proves that the state's authority holds its
    epoch by right: the :class:`Mandate` links since the host last held the room (none when the
    authority is the host).
    """

    TYPE = "snapshot"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    seq: int = spec(_EPOCH)
    genesis: bytes = spec(Bytes(1, 4096))
    state: bytes = spec(Bytes(1, codec.MAX_FRAME - 16_384 - CUSTODY_MAX * MANDATE_MAX))
    custody: tuple[bytes, ...] = spec(ListOf(Bytes(1, MANDATE_MAX), CUSTODY_MAX), default=())


@record
@dataclass(frozen=True, slots=True)
class VoteRequest(Message):
    """Pre-vote: ``candidate`` asks whether the others also miss the authority."""

    TYPE = "vote_req"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    candidate: NodeId = spec(_KEY)
    base_seq: int = spec(_EPOCH)


@record
@dataclass(frozen=True, slots=True)
class Vote(Message):
    """A vote for ``candidate`` to hold ``epoch``; a voter signs at most one per epoch."""

    TYPE = "vote"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    candidate: NodeId = spec(_KEY)
    voter: NodeId = spec(_KEY)


@record
@dataclass(frozen=True, slots=True)
class Takeover(Message):
    """A claim of ``epoch`` by ``claimant``, based on the state (base_seq, base_hash).

    ``basis`` is the base state's attestation by its own authority (the update that led to it,
    or its heartbeat), so that the claim can join the room's proof of authority; a host's
    reclaim needs none."""

    TYPE = "takeover"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    claimant: NodeId = spec(_KEY)
    base_seq: int = spec(_EPOCH)
    base_hash: bytes = spec(_HASH)
    votes: tuple[bytes, ...] = spec(ListOf(Bytes(1, 512), 3))
    basis: bytes = spec(Bytes(0, 1024), default=b"")


@record
@dataclass(frozen=True, slots=True)
class Mandate(Message):
    """One link of a proof of authority: how the authority of epoch ``e + 1`` got it from the
    entitled authority of the state ``header`` (at epoch ``e``).

    ``header`` is that state's canonical header (:func:`p2pspaces.core.statebytes.header_bytes`),
    whose hash its authority signed in ``basis``.  With a ``claim``, a co-host took over: the
    basis attests the header (an update leading to it, or a heartbeat), and the claim is the
    co-host's signed takeover with its votes.  Without one, the authority handed over as it
    left: the basis is its signed ``leave``, chained to the header."""

    TYPE = "mandate"
    header: bytes = spec(Bytes(1, 1024))
    basis: bytes = spec(Bytes(1, 1024))
    claim: bytes = spec(Bytes(0, 2560), default=b"")


@record
@dataclass(frozen=True, slots=True)
class Heartbeat(Message):
    """Liveness; from the authority it also tells members the latest (epoch, seq, hash)."""

    TYPE = "heartbeat"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    seq: int = spec(_EPOCH)
    state_hash: bytes = spec(_HASH)


@record
@dataclass(frozen=True, slots=True)
class Resync(Message):
    """A member lost its place (a gap, a broken chain) and asks the authority for a snapshot."""

    TYPE = "resync"
    room_id: RoomId = spec(_HASH)
    seq: int = spec(_EPOCH)


@record
@dataclass(frozen=True, slots=True)
class Heard(Message):
    """How loud a member plays a speaker: sent straight to that speaker, about once a second
    while it is heard, so that a speaker sees who hears it.

    Unsigned: the link's handshake proved who sent it, and a member speaks only of its own
    hearing (or, as a gateway, of its browser guests'): a lie can only be about oneself."""

    TYPE = "heard"
    room_id: RoomId = spec(_HASH)
    level_db: int = spec(Int(-127, 0))
    """The speaker's voice as played here over the last second: the loudest 20 ms, dBFS."""
    guest: bytes = spec(Bytes(0, NODE_ID_SIZE), default=b"")
    """A browser guest of the sender's that this is about (empty: the sender itself)."""


@record
@dataclass(frozen=True, slots=True)
class Redirect(Message):
    """A hint to a peer still in an older epoch: the room's authority is ``authority`` now.

    Unsigned, since it only says whom to ask: the peer links to that node and asks to join,
    and believes nothing until that node's own signed snapshot arrives.
    """

    TYPE = "redirect"
    room_id: RoomId = spec(_HASH)
    epoch: int = spec(_EPOCH)
    authority: NodeId = spec(_KEY)


@record
@dataclass(frozen=True, slots=True)
class Contact(Message):
    """Where the signing node listens for links: its addresses and signaling port.

    Members send their own to the authority, which relays it to the room, so that members can
    reach each other where multicast (and so mDNS) is filtered (docs/DESIGN.md section 4).  Only a
    node itself can say where it is; the link's handshake proves the key at the far end anyway.
    """

    TYPE = "contact"
    room_id: RoomId = spec(_HASH)
    addresses: tuple[str, ...] = spec(ListOf(Text(ADDRESS_MAX, min_chars=1), ADDRESSES_MAX))
    port: int = spec(Int(1, 65535))
    web_port: int = spec(Int(0, 65535), default=0)
    """The node's guest page (HTTP; 0: it serves no browsers), so that a busy gateway's page
    can send browsers to a less busy node of the room."""
    web_secure_port: int = spec(Int(0, 65535), default=0)
    guests: int = spec(Int(0, 65535), default=0)
    max_guests: int = spec(Int(0, 65535), default=0)


@record
@dataclass(frozen=True, slots=True)
class Contacts(Message):
    """Signed :class:`Contact` envelopes, each as its node signed it: a member's own on its way
    to the authority, or the authority relaying the room's (a joiner gets them in bundles)."""

    TYPE = "contacts"
    room_id: RoomId = spec(_HASH)
    entries: tuple[bytes, ...] = spec(ListOf(Bytes(1, CONTACT_MAX), CONTACTS_PER_MESSAGE))


@record
@dataclass(frozen=True, slots=True)
class History(Message):
    """The room's last chat lines, for a joiner: each :class:`Chat` envelope as its author
    signed it, oldest first, sent once by the authority after the joiner's snapshot."""

    TYPE = "history"
    room_id: RoomId = spec(_HASH)
    entries: tuple[bytes, ...] = spec(ListOf(Bytes(1, CHAT_ENVELOPE_MAX), HISTORY_MAX))


@record
@dataclass(frozen=True, slots=True)
class Chat(Message):
    """A chat line; ``chat_id`` is its author's rising counter, ``epoch`` the room's epoch when
    it was signed (as in :class:`Request`)."""

    TYPE = "chat"
    room_id: RoomId = spec(_HASH)
    chat_id: int = spec(_COUNTER)
    text: str = spec(Text(CHAT_MAX, min_chars=1, controls="\n"))
    epoch: int = spec(_EPOCH, default=0)


@record
@dataclass(frozen=True, slots=True)
class Reaction(Message):
    """An emoji reaction from the fixed set; ``reaction_id`` and ``epoch`` as in :class:`Chat`."""

    TYPE = "reaction"
    room_id: RoomId = spec(_HASH)
    emoji: Emoji = spec(Choice(Emoji))
    reaction_id: int = spec(_COUNTER, default=0)
    epoch: int = spec(_EPOCH, default=0)


@record
@dataclass(frozen=True, slots=True)
class Error(Message):
    """A refusal: a short machine code, a human reason, and the request it answers (0: none).

    ``to`` names a browser guest when the refusal is for it, sent to its gateway."""

    TYPE = "error"
    code: str = spec(Text(32, min_chars=1))
    reason: str = spec(Text(REASON_MAX))
    req_id: int = spec(_COUNTER, default=0)
    to: NodeId | None = spec(Optional(_KEY), default=None)


@record
@dataclass(frozen=True, slots=True)
class Signed(Message):
    """The envelope: ``signature`` is ``signer``'s over ``DOMAIN_MESSAGE + payload``."""

    TYPE = "signed"
    signer: NodeId = spec(_KEY)
    payload: bytes = spec(Bytes(1, codec.MAX_FRAME - 256))
    signature: bytes = spec(Bytes(SIGNATURE_SIZE, SIGNATURE_SIZE))


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        ChallengeResponse,
        Offer,
        Answer,
        Genesis,
        Request,
        Update,
        Snapshot,
        VoteRequest,
        Vote,
        Takeover,
        Mandate,
        Heartbeat,
        Resync,
        Heard,
        Redirect,
        Contact,
        Contacts,
        History,
        Chat,
        Reaction,
        Error,
        Signed,
    )
}
_HEADER = frozenset({"v", "t"})


def encode(message: Message) -> bytes:
    """Return the wire bytes of ``message``."""
    return codec.pack(
        {"v": codec.PROTOCOL_VERSION, "t": message.TYPE, **codec.fields_to_map(message)}
    )


@codec.guarded
def decode(data: bytes, max_size: int = codec.MAX_FRAME) -> Message:
    """Parse wire bytes into a message, or raise :class:`WireError` with the reason."""
    obj = codec.unpack(data, max_size)
    if type(obj) is not dict:
        raise WireError("a message must be a map")
    version = obj.get("v")
    if version != codec.PROTOCOL_VERSION or type(version) is not int:
        raise WireError(f"unsupported protocol version {str(version)[:20]}")
    kind = obj.get("t")
    cls = MESSAGE_TYPES.get(kind) if type(kind) is str else None
    if cls is None:
        raise WireError(f"unknown message type {str(kind)[:40]!r}")
    return codec.build(cls, obj, skip=_HEADER)


def seal(identity: Identity, message: Message) -> Signed:
    """Sign ``message`` with ``identity`` and return the envelope."""
    payload = encode(message)
    return Signed(identity.node_id, payload, identity.sign(DOMAIN_MESSAGE, payload))


def seal_bytes(identity: Identity, message: Message) -> bytes:
    """Sign ``message`` and return the envelope's wire bytes."""
    return encode(seal(identity, message))


def open_signed(envelope: Signed, signer: bytes | None = None) -> Message:
    """Verify the envelope's signature over its payload as received, then decode the payload.

    ``signer``, when given, is the key the envelope must be signed by.
    """
    if signer is not None and envelope.signer != signer:
        raise WireError("signed by an unexpected key")
    if not verify(envelope.signer, envelope.signature, DOMAIN_MESSAGE, envelope.payload):
        raise WireError("bad signature")
    inner = decode(envelope.payload)
    if isinstance(inner, Signed):
        raise WireError("nested envelope")
    return inner


def expect(message: Any, cls: type[codec.R]) -> codec.R:
    """Return ``message`` if it is a ``cls``, else raise :class:`WireError`."""
    if not isinstance(message, cls):
        raise WireError(f"expected {cls.__name__.lower()}, got {type(message).__name__.lower()}")
    return message


def open_signed_bytes(
    data: bytes, cls: type[codec.R], signer: bytes | None = None
) -> tuple[Signed, codec.R]:
    """Decode an envelope from bytes, verify it, and check the inner message's type."""
    envelope = expect(decode(data), Signed)
    return envelope, expect(open_signed(envelope, signer), cls)


def digest(data: bytes) -> bytes:
    """SHA-256, the hash used for room ids and state hashes."""
    return hashlib.sha256(data).digest()
