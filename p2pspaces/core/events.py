"""The node's events: one stream for the CLI, the headless JSON interface, the app and tests.

Each event is a frozen dataclass whose ``as_json()`` is the object the headless mode prints
(docs/headless.md).  Keys are hex; people-facing ids add the short fingerprint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.statebytes import state_hash
from p2pspaces.core.wire import Action


def _who(room: bytes, member: bytes, name: str, key: str = "from") -> dict[str, Any]:
    """The fields that say which member of which room an event is about."""
    return {
        "room": room.hex(),
        key: member.hex(),
        "name": name,
        "fingerprint": short_fingerprint(member),
    }


def _name_in(state: RoomState, node: bytes) -> str:
    member = state.members.get(NodeId(node))
    return member.name if member is not None else short_fingerprint(node)


class Event:
    """Base of every node event; ``NAME`` is the JSON ``event`` field."""

    __slots__ = ()
    NAME: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        """The event's JSON fields, without the name."""
        raise NotImplementedError

    def as_json(self) -> dict[str, Any]:
        """The JSON object printed by the headless mode."""
        return {"event": self.NAME, **self.fields()}


@dataclass(frozen=True, slots=True)
class Ready(Event):
    """The node is up: identity, signaling port and addresses."""

    NAME = "ready"
    node: bytes
    name: str
    port: int
    addresses: tuple[str, ...]

    def fields(self) -> dict[str, Any]:
        return {
            "node": self.node.hex(),
            "fingerprint": short_fingerprint(self.node),
            "name": self.name,
            "port": self.port,
            "addresses": list(self.addresses),
        }


@dataclass(frozen=True, slots=True)
class WebReady(Event):
    """This node serves its room to browsers: the pages' addresses and the certificate's
    SHA-256 fingerprint (hex) for people who compare it."""

    NAME = "web"
    http: str
    https: str
    cert_sha256: str

    def fields(self) -> dict[str, Any]:
        return {"http": self.http, "https": self.https, "cert_sha256": self.cert_sha256}


@dataclass(frozen=True, slots=True)
class RoomFound(Event):
    """A room is live on the network (or its advert changed: ``changed``)."""

    NAME = "room_found"
    room: bytes
    title: str
    host: bytes
    host_name: str
    speakers: int
    listeners: int
    changed: bool = False
    host_trust: str = "new"
    """``known`` (met before under this key), ``new``, or ``clash`` (someone met before used
    this name with another key)."""
    recording: bool = False
    owner: bytes = b""
    """The key of the room's host (``host`` is whoever advertises it: a co-host keeping it
    after a takeover); this node's own key means the room is ours to take back."""

    def fields(self) -> dict[str, Any]:
        return {
            "room": self.room.hex(),
            "title": self.title,
            "host": self.host.hex(),
            "host_name": self.host_name,
            "host_fingerprint": short_fingerprint(self.host),
            "host_trust": self.host_trust,
            "speakers": self.speakers,
            "listeners": self.listeners,
            "recording": self.recording,
            "changed": self.changed,
            "owner": self.owner.hex(),
        }


@dataclass(frozen=True, slots=True)
class RoomLost(Event):
    """A room's advert went away (ended, or its host vanished)."""

    NAME = "room_lost"
    room: bytes

    def fields(self) -> dict[str, Any]:
        return {"room": self.room.hex()}


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """This node is in a room, as host or member."""

    NAME = "joined"
    room: bytes
    title: str
    host: bool
    reclaiming: bool = False
    """The host is back in the room it made, to take it back from the co-host keeping it."""

    def fields(self) -> dict[str, Any]:
        return {
            "room": self.room.hex(),
            "title": self.title,
            "as_host": self.host,
            "reclaiming": self.reclaiming,
        }


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """The signed room state this node holds changed."""

    NAME = "state"
    state: RoomState
    actor: bytes | None = None
    """Who made the change (None: a snapshot, or the ``state`` command's answer)."""
    action: Action | None = None
    """The change itself, as the authority signed it."""

    def fields(self) -> dict[str, Any]:
        state = self.state
        members = [
            {
                "id": node.hex(),
                "name": m.name,
                "fingerprint": short_fingerprint(node),
                "role": m.role.name.lower(),
                "muted": m.muted,
                "hand": m.hand,
                "invited": m.invited,
                "gateway": m.gateway.hex() if m.gateway is not None else None,
                "via": m.via.hex() if m.via is not None else None,
            }
            for node, m in sorted(state.members.items(), key=lambda item: (-item[1].role, item[0]))
        ]
        return {
            "room": state.room_id.hex(),
            "epoch": state.epoch,
            "seq": state.seq,
            "hash": state_hash(state).hex(),
            "title": state.title,
            "authority": state.authority.hex(),
            "members": members,
            "cohosts": [c.hex() for c in state.cohosts],
            "hands": [h.hex() for h in state.hand_queue()],
            "blocked": sorted(b.hex() for b in state.blocked),
            "recording": state.recording,
            "ended": state.ended,
            "change": self._change(),
        }

    def _change(self) -> dict[str, Any] | None:
        action, actor = self.action, self.actor
        if action is None or actor is None:
            return None
        target = action.target
        return {
            "action": action.kind.value,
            "actor": actor.hex(),
            "actor_name": _name_in(self.state, actor),
            "target": target.hex() if target is not None else None,
            "target_name": _name_in(self.state, target) if target is not None else None,
            "text": action.text,
            "flag": action.flag,
            "via": action.via.hex() if action.via is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ChatReceived(Event):
    """A chat line, relayed by the authority and signed by its author."""

    NAME = "chat"
    room: bytes
    author: bytes
    name: str
    text: str
    earlier: bool = False
    """Said before we joined (the room's last lines, given to a joiner)."""

    def fields(self) -> dict[str, Any]:
        return _who(self.room, self.author, self.name) | {
            "text": self.text,
            "earlier": self.earlier,
        }


@dataclass(frozen=True, slots=True)
class ErrorEvent(Event):
    """Something was refused or failed; ``code`` is stable, ``reason`` is for people."""

    NAME = "error"
    code: str
    reason: str
    req_id: int = 0

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "reason": self.reason}
        if self.req_id:
            out["req_id"] = self.req_id
        return out


@dataclass(frozen=True, slots=True)
class GuestRefused(Event):
    """The room refused a request of a browser guest this node serves (for its page)."""

    NAME = "guest_refused"
    guest: bytes
    code: str
    reason: str
    req_id: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            "guest": self.guest.hex(),
            "code": self.code,
            "reason": self.reason,
            "req_id": self.req_id,
        }


class Out(enum.StrEnum):
    """How a node came to be out of its room (:attr:`Left.how`)."""

    LEFT = "left"
    """It left, as it asked."""
    REMOVED = "removed"
    """A host or co-host removed it (it may join again)."""
    BLOCKED = "blocked"
    """A host or co-host blocked it (it cannot join again)."""
    FLOODED = "flooded"
    """The room dropped it for sending too much (it may come back after the penalty)."""


@dataclass(frozen=True, slots=True)
class Left(Event):
    """This node is no longer in the room (it left, or was removed or blocked)."""

    NAME = "left"
    room: bytes
    reason: str
    how: Out = Out.LEFT
    """Why, as a code (``reason`` says it in words)."""

    def fields(self) -> dict[str, Any]:
        return {"room": self.room.hex(), "reason": self.reason, "how": str(self.how)}


@dataclass(frozen=True, slots=True)
class Ended(Event):
    """The room ended for everyone."""

    NAME = "ended"
    room: bytes
    reason: str
    by_me: bool = False
    """This node ended it (its own words say "You ended the Space")."""
    orphaned_by: bytes | None = None
    """It ended because this authority went quiet and nobody took over: if that node starts
    a Space again soon, this node joins it by itself."""

    def fields(self) -> dict[str, Any]:
        orphaned = self.orphaned_by.hex() if self.orphaned_by is not None else None
        return {
            "room": self.room.hex(),
            "reason": self.reason,
            "by_me": self.by_me,
            "orphaned_by": orphaned,
        }


@dataclass(frozen=True, slots=True)
class Speaking(Event):
    """A member started speaking (their level rose above the threshold)."""

    NAME = "speaking"
    room: bytes
    member: bytes
    name: str
    level_db: float

    def fields(self) -> dict[str, Any]:
        return _who(self.room, self.member, self.name, "member") | {
            "level_db": round(self.level_db, 1)
        }


@dataclass(frozen=True, slots=True)
class HeardBy(Event):
    """While we speak: how many of the room hear us, and who does not, or only very quietly
    (from each member's own reports of the level it plays us at).  Emitted when it changes."""

    NAME = "heard_by"
    room: bytes
    heard: int
    """Members that play our voice at a usual level."""
    of: int
    """Members that could: everyone in the room but us (a browser guest counts once its
    gateway reports for it)."""
    quiet: tuple[str, ...] = ()
    """Names of members that hear us, but very quietly."""
    deaf: tuple[str, ...] = ()
    """Names of members that do not hear us at all."""

    def fields(self) -> dict[str, Any]:
        return {
            "room": self.room.hex(),
            "heard": self.heard,
            "of": self.of,
            "quiet": list(self.quiet),
            "deaf": list(self.deaf),
        }


@dataclass(frozen=True, slots=True)
class MicCheck(Event):
    """A microphone check: recording (speak now), playing back (listen), then done, with how
    loud the voice was and what that means in words."""

    NAME = "mic_check"
    stage: str
    """``recording``, ``playing`` or ``done``."""
    seconds: float = 0.0
    peak_db: float = -96.0
    """The loudest 20 ms of the recording (dBFS; done only)."""
    verdict: str = ""
    """``silent``, ``quiet``, ``good`` or ``loud`` (done only)."""
    words: str = ""
    """The verdict for a person (done only)."""

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"stage": self.stage, "seconds": self.seconds}
        if self.stage == "done":
            fields |= {"peak_db": round(self.peak_db, 1), "verdict": self.verdict,
                       "words": self.words}  # fmt: skip
        return fields


@dataclass(frozen=True, slots=True)
class Quiet(Event):
    """A member stopped speaking."""

    NAME = "quiet"
    room: bytes
    member: bytes
    name: str

    def fields(self) -> dict[str, Any]:
        return _who(self.room, self.member, self.name, "member")


@dataclass(frozen=True, slots=True)
class AuthorityChanged(Event):
    """Another node is the room's authority now (a takeover, a handover or a reclaim)."""

    NAME = "authority"
    room: bytes
    epoch: int
    authority: bytes
    name: str
    previous: bytes | None = None
    """The node that held the room before."""
    took_over: bool = False
    """True when a co-host took the room from a silent authority (not a hand-over)."""

    def fields(self) -> dict[str, Any]:
        return {
            "room": self.room.hex(),
            "epoch": self.epoch,
            "authority": self.authority.hex(),
            "name": self.name,
            "fingerprint": short_fingerprint(self.authority),
            "previous": self.previous.hex() if self.previous is not None else None,
            "took_over": self.took_over,
        }


@dataclass(frozen=True, slots=True)
class ReactionReceived(Event):
    """An emoji reaction, relayed by the authority and signed by its author."""

    NAME = "reaction"
    room: bytes
    author: bytes
    name: str
    emoji: str

    def fields(self) -> dict[str, Any]:
        return _who(self.room, self.author, self.name) | {"emoji": self.emoji}


@dataclass(frozen=True, slots=True)
class Recording(Event):
    """This node (the room's authority) started or stopped writing the room's audio."""

    NAME = "recording"
    room: bytes
    on: bool
    path: str

    def fields(self) -> dict[str, Any]:
        return {"room": self.room.hex(), "on": self.on, "path": self.path}


@dataclass(frozen=True, slots=True)
class Converged(Event):
    """A partition healed and this node's branch lost: it now holds the winning branch's state
    (``undone`` of its own changes were undone; ``blocks_kept`` blocks will be made again)."""

    NAME = "converged"
    room: bytes
    epoch: int
    authority: bytes
    undone: int
    blocks_kept: int

    def fields(self) -> dict[str, Any]:
        return {
            "room": self.room.hex(),
            "epoch": self.epoch,
            "authority": self.authority.hex(),
            "undone": self.undone,
            "blocks_kept": self.blocks_kept,
        }


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """Something for the user to read that is neither an error nor room news (help text)."""

    NAME = "notice"
    text: str

    def fields(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True, slots=True)
class RoomList(Event):
    """The rooms this node knows to be live, answering the ``rooms`` command."""

    NAME = "rooms"
    rooms: tuple[RoomFound, ...]

    def fields(self) -> dict[str, Any]:
        return {"rooms": [room.fields() for room in self.rooms]}
