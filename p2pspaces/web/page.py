"""What passes between the gateway and a guest's page, apart from signed bytes: every JSON
message a page receives is made here (the page's ``app.js`` reads them), the room as the page
shows it, why a guest is out, and refusals in words."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pspaces.core.events import ChatReceived, ReactionReceived
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import ActionKind, Contact

Message = dict[str, Any]
"""One JSON message to a page."""
OTHERS_SHOWN = 5
"""Other gateways a page is told of (where to go if this node goes away or is full)."""


@dataclass(frozen=True, slots=True)
class WebInfo:
    """Where the pages are, and the certificate's fingerprint."""

    http: str
    https: str
    cert_sha256: str

    def fields(self) -> dict[str, str]:
        return {"http": self.http, "https": self.https, "cert_sha256": self.cert_sha256}


def welcome(challenge: bytes, gateway: NodeId, gateway_name: str, room: Message) -> Message:
    """The first message on a socket: the challenge to sign, who serves, the room."""
    return {
        "t": "welcome",
        "challenge": challenge.hex(),
        "gateway": gateway.hex(),
        "gateway_name": gateway_name,
        **room,
    }


def room_info(
    state: RoomState | None,
    info: WebInfo | None,
    serving: int,
    max_guests: int,
    others: list[Message],
) -> Message:
    """The room this node serves, for a page that opens (also ``/info``)."""
    return {
        "room": None if state is None else {"id": state.room_id.hex(), "title": state.title},
        "http": info.http if info else None,
        "https": info.https if info else None,
        "cert_sha256": info.cert_sha256 if info else None,
        "guests": serving,
        "max_guests": max_guests,
        "others": others,
    }


def full(reason: str, others: list[Message]) -> Message:
    """This node serves all the guests it may; ``others`` have room."""
    return {"t": "full", "reason": reason, "others": others}


def error(code: str, reason: str) -> Message:
    """Something the page sent was refused; ``reason`` in words."""
    return {"t": "error", "code": code, "reason": reason}


def chat(event: ChatReceived) -> Message:
    """A chat line."""
    return {"t": "chat", "from": event.author.hex(), "name": event.name, "text": event.text}


def reaction(event: ReactionReceived) -> Message:
    """An emoji reaction."""
    return {"t": "reaction", "from": event.author.hex(), "name": event.name, "emoji": event.emoji}


def speaking(member: bytes, on: bool) -> Message:
    """``member`` started or stopped speaking."""
    return {"t": "speaking", "id": member.hex(), "on": on}


def answer(sdp: str) -> Message:
    """The node's WebRTC answer to the page's offer."""
    return {"t": "answer", "sdp": sdp}


def closed(reason: str, *, out: bool = False, code: str = "") -> Message:
    """The socket closes; ``out``: the guest is out of the room (left, removed, blocked);
    ``code`` tells the page why (``elsewhere``: a newer tab took over, do not reconnect)."""
    message: Message = {"t": "out" if out else "closed", "reason": reason}
    if code:
        message["code"] = code
    return message


def other_gateways(
    state: RoomState | None, me: NodeId, contact_of: Callable[[NodeId], Contact | None]
) -> list[Message]:
    """Other nodes of this room that serve pages and have room for guests, least busy first
    (from the signed contacts the room relays)."""
    if state is None:
        return []
    others: list[tuple[float, int, Message]] = []
    for node, member in state.members.items():
        contact = contact_of(node) if member.gateway is None else None
        if node == me or contact is None or not contact.web_port:
            continue
        if contact.guests >= contact.max_guests or not contact.addresses:
            continue
        address = contact.addresses[0]
        busy = contact.guests / max(1, contact.max_guests)
        gateway = {
            "name": member.name,
            "http": f"http://{address}:{contact.web_port}/",
            "https": f"https://{address}:{contact.web_secure_port}/",
            "guests": contact.guests,
            "max_guests": contact.max_guests,
        }
        others.append((busy, contact.guests, gateway))
    others.sort(key=lambda o: (o[0], o[1]))  # least busy first
    return [gateway for _, _, gateway in others[:OTHERS_SHOWN]]


def room_view(
    state: RoomState | None,
    gateway: NodeId,
    speaking_now: set[bytes],
    serving: int,
    others: list[Message],
) -> Message:
    """The room as every page of this gateway shows it (:func:`for_page` adds who it is)."""
    message = state_message(state, None, gateway)
    message["speaking"] = [m.hex() for m in speaking_now]
    message["guests"] = serving
    message["others"] = others  # where to go if this node goes away
    return message


def for_page(view: Message, state: RoomState | None, key: NodeId | None) -> Message:
    """``view`` for the page of ``key``: whether it is a member, or blocked."""
    member = key is not None and state is not None and key in state.members
    blocked = key is not None and state is not None and key in state.blocked
    return {**view, "me": key.hex() if member and key is not None else None, "blocked": blocked}


_FIELD_PATH = re.compile(r"^(?:[A-Z]\w*(?:\.\w+)+: )+")
_RANGE = re.compile(r"(\d+) (characters|items), not in (\d+)\.\.(\d+)")


def in_words(reason: str) -> str:
    """A refusal as a person reads it: no codec field paths ("Request.action: Action.text:"),
    no ranges ("300 characters, not in 0..100": "300 characters long; the most is 100")."""
    reason = _FIELD_PATH.sub("", reason)
    reason = re.sub(r"^refused: ", "", reason)
    reason = _FIELD_PATH.sub("", reason)

    def limit(match: re.Match[str]) -> str:
        count, unit, low, high = match.groups()
        if int(count) < int(low):
            return f"{count} {unit}; the fewest is {low}"
        return f"{count} {unit} long; the most is {high}"

    return _RANGE.sub(limit, reason)


def out_reason(kind: ActionKind) -> str:
    return {
        ActionKind.REMOVE: "removed from the Space by a host",
        ActionKind.BLOCK: "blocked from this Space by a host",
        ActionKind.LEAVE: "you left the Space",
    }.get(kind, "no longer in the Space")


def state_message(state: RoomState | None, me: bytes | None, gateway: bytes) -> dict[str, Any]:
    """The room as a page shows it (names are the members' own text: the page renders them
    as text, never as markup; each comes with its short fingerprint, to tell namesakes apart).
    ``blocked`` tells a page whose key the room blocked, before it tries to join (the gateway
    sets ``me`` and ``blocked`` per page)."""
    if state is None:
        return {"t": "state", "room": None}
    members = [
        {
            "id": node.hex(),
            "name": m.name,
            "role": m.role.name.lower(),
            "muted": m.muted,
            "hand": m.hand,
            "invited": m.invited,
            "guest": m.gateway is not None,
            "fp": short_fingerprint(node),
        }
        for node, m in state.members.items()
    ]
    return {
        "t": "state",
        "room": {
            "id": state.room_id.hex(),
            "title": state.title,
            "recording": state.recording,
            "ended": state.ended,
            "host": state.host.hex(),
            "epoch": state.epoch,
            "seq": state.seq,
        },
        "me": me.hex() if me is not None and me in state.members else None,
        "blocked": me is not None and me in state.blocked,
        "gateway": gateway.hex(),
        "members": members,
        "hands": [n.hex() for n in state.hand_queue()],
    }
