"""The guest protocol without I/O: what a page may send, how it proves its key, and the table
of pages and guests with its rules (one tab per key, a grace for a page that vanished, who is
put out by a room change).  Frames and times in, decisions out; the aiohttp connection in
:mod:`p2pspaces.web.gateway` does the sending, like :class:`~p2pspaces.core.session.RoomSession`
under the node (websockets' sans-I/O protocol is the model).
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from p2pspaces.core.events import StateChanged
from p2pspaces.core.identity import NODE_ID_SIZE, NodeId, verify
from p2pspaces.core.wire import ActionKind
from p2pspaces.web.page import out_reason

DOMAIN_WEB = b"p2pspaces/1 web guest\x00"
"""What a page's key signs to prove itself: this, the gateway's challenge, the gateway's key."""
TEXT_MAX = 32 * 1024
"""A JSON frame from a page: an SDP offer is the biggest (a few KB)."""
BINARY_MAX = 4096
"""A signed envelope from a page: a request, a chat line (500 characters) or a reaction."""
HEARD_GAP_S = 0.9
"""A page's hearing reports are passed on at most this often (each becomes a message to every
speaker: a page must not be able to make its gateway flood them)."""
PAGES_OVER_GUESTS = 5
"""Open sockets a gateway keeps beyond its guests (pages not yet proven, or on their way)."""


class PageCode(enum.StrEnum):
    """Why a gateway refused what a page sent (beside the room's own codes, as ``refused``)."""

    BAD_MESSAGE = "bad_message"
    """Not a frame the page may send now (not JSON, no type, unknown, malformed, too big)."""
    BAD_HELLO = "bad_hello"
    """The page's key is not proven by its signature (or is the gateway's own)."""
    BAD_OFFER = "bad_offer"
    """The page's WebRTC offer could not be used."""


class PageError(Exception):
    """A frame the page should not have sent: the code and the reason go back to it."""

    def __init__(self, code: PageCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hello:
    """The page proves its key: a signature over the challenge and the gateway's key."""

    key: bytes
    sig: bytes


@dataclass(frozen=True, slots=True)
class Bye:
    """The tab is closing (``pagehide``): its place may go at once."""


@dataclass(frozen=True, slots=True)
class Offer:
    """The page's WebRTC offer."""

    sdp: str


@dataclass(frozen=True, slots=True)
class Volume:
    """The guest plays ``source`` at ``gain`` for itself only."""

    source: NodeId
    gain: float


@dataclass(frozen=True, slots=True)
class Heard:
    """How loud the page played the room over the last second (its loudest 20 ms, dBFS)."""

    level_db: float


PageFrame = Hello | Bye | Offer | Volume | Heard


def parse_frame(text: str, proven: bool) -> PageFrame:
    """A JSON frame from a page; :class:`PageError` says what is wrong with it.  Only
    ``hello`` is taken from a page that has not proven its key yet."""
    try:
        message = json.loads(text)
    except ValueError:
        raise PageError(PageCode.BAD_MESSAGE, "not JSON") from None
    kind = message.get("t") if isinstance(message, dict) else None
    if not isinstance(kind, str):
        raise PageError(PageCode.BAD_MESSAGE, 'a message needs a type ("t")')
    if kind != "hello" and not proven:
        raise PageError(PageCode.BAD_MESSAGE, f"{kind[:20]} before hello")
    frame = _FRAMES.get(kind, _unexpected)(message)
    if frame is None:
        raise PageError(PageCode.BAD_MESSAGE, f"a malformed {kind}")
    return frame


def _hello(message: dict[str, object]) -> Hello | None:
    key, sig = message.get("key"), message.get("sig")
    if not isinstance(key, str) or not isinstance(sig, str):
        return None
    try:
        return Hello(bytes.fromhex(key), bytes.fromhex(sig))
    except ValueError:
        return None


def _offer(message: dict[str, object]) -> Offer | None:
    sdp = message.get("sdp")
    return Offer(sdp) if isinstance(sdp, str) else None


def _volume(message: dict[str, object]) -> Volume | None:
    source, gain = message.get("id"), message.get("gain")
    if not isinstance(source, str) or isinstance(gain, bool) or not isinstance(gain, int | float):
        return None
    try:
        key = bytes.fromhex(source)
    except ValueError:
        return None
    value = float(gain)
    if len(key) != NODE_ID_SIZE or not math.isfinite(value):
        return None
    return Volume(NodeId(key), value)


def _heard(message: dict[str, object]) -> Heard | None:
    level = message.get("level")
    if isinstance(level, bool) or not isinstance(level, int | float) or not math.isfinite(level):
        return None
    return Heard(max(-127.0, min(0.0, float(level))))


def _unexpected(message: dict[str, object]) -> PageFrame:
    raise PageError(PageCode.BAD_MESSAGE, f"unexpected {str(message.get('t'))[:20]}")


_FRAMES = {
    "hello": _hello,
    "bye": lambda m: Bye(),
    "offer": _offer,
    "volume": _volume,
    "heard": _heard,
}


def proven_key(hello: Hello, challenge: bytes, gateway: NodeId) -> NodeId:
    """The page's key, once its signature over ``challenge`` and our key checks out."""
    if len(hello.key) != NODE_ID_SIZE or not verify(
        hello.key, hello.sig, DOMAIN_WEB, challenge + gateway
    ):
        raise PageError(PageCode.BAD_HELLO, "key not proven")
    if hello.key == gateway:
        raise PageError(PageCode.BAD_HELLO, "that is my key")
    return NodeId(hello.key)


class Page(Protocol):
    """A page as the table sees it (the connection's object for one socket)."""

    key: NodeId | None
    bye: bool


P = TypeVar("P", bound=Page)


class Gone(enum.Enum):
    """What becomes of a guest whose page went away."""

    NOTHING = "nothing"
    """Not a guest in the room (never proven, replaced by a newer tab, or already out)."""
    DROP = "drop"
    """The tab said bye: its place goes now."""
    GRACE = "grace"
    """It may come back (a phone off the Wi-Fi a moment): its place waits for the grace."""


class GuestBook(Generic[P]):
    """The pages a gateway has open and the guests among them, by key."""

    def __init__(self, me: NodeId, max_guests: int, grace_s: float) -> None:
        self.me = me
        self.max_guests = max_guests
        self.grace_s = grace_s
        self.pages: set[P] = set()
        self.guests: dict[NodeId, P] = {}
        """Proven pages by guest key (one tab per key: a newer one replaces the older)."""
        self._heard_at: dict[NodeId, float] = {}
        self._waiting: set[NodeId] = set()
        """Guests whose page went away, in their grace."""

    @property
    def serving(self) -> int:
        """How many guests are served now."""
        return len(self.guests)

    def full(self) -> str | None:
        """Why a new page cannot be taken, or None."""
        if self.serving >= self.max_guests or len(self.pages) >= (
            self.max_guests + PAGES_OVER_GUESTS
        ):
            return f"this node already serves {self.serving} guests, its limit"
        return None

    def opened(self, page: P) -> None:
        """A page's socket is open (not yet proven)."""
        self.pages.add(page)

    def proven(self, page: P, key: NodeId) -> P | None:
        """The page proved ``key``: it is that guest's page now (a grace waiting for it ends);
        returns the guest's older page, which the connection closes."""
        old = self.guests.get(key)
        self._waiting.discard(key)
        page.key = key
        self.guests[key] = page
        return old if old is not None and old is not page else None

    def gone(self, page: P, in_room: bool) -> Gone:
        """``page``'s socket closed; ``in_room``: its guest is a member of the room."""
        self.pages.discard(page)
        key = page.key
        if key is None or self.guests.get(key) is not page:
            return Gone.NOTHING
        del self.guests[key]
        self._heard_at.pop(key, None)
        if not in_room:
            return Gone.NOTHING
        if page.bye:
            return Gone.DROP
        self._waiting.add(key)
        return Gone.GRACE

    def closed(self, page: P) -> bool:
        """We closed ``page``; returns whether it was its guest's page."""
        self.pages.discard(page)
        key = page.key
        if key is not None and self.guests.get(key) is page:
            del self.guests[key]
            self._heard_at.pop(key, None)
            return True
        return False

    def may_report(self, key: NodeId, now: float) -> bool:
        """Whether the guest's hearing report may go on now (at most one per
        :data:`HEARD_GAP_S`)."""
        if key not in self.guests or now - self._heard_at.get(key, -HEARD_GAP_S) < HEARD_GAP_S:
            return False
        self._heard_at[key] = now
        return True

    def grace_over(self, key: NodeId) -> bool:
        """``key``'s grace ended; returns whether to drop it (its page did not come back)."""
        if key not in self._waiting:
            return False
        self._waiting.discard(key)
        return key not in self.guests

    def clear_graces(self) -> None:
        """The gateway is closing: nobody waits any more."""
        self._waiting.clear()

    def put_out(self, event: StateChanged) -> list[tuple[P, str, str]]:
        """Our guests that a room change put out (left, removed, blocked), with the reason
        in words and its code for the page."""
        action = event.action
        if action is None:
            return []
        out = []
        for key, page in self.guests.items():
            if key in event.state.members:
                continue
            left = event.actor == key and action.kind is ActionKind.LEAVE
            if action.target == key or left:
                out.append((page, out_reason(action.kind), action.kind.name.lower()))
        return out
