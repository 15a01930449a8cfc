"""Helpers to build rooms in memory for the core tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pspaces.core import room
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.wire import Action, ActionKind

NONCE = b"n" * 16


def person(seed: int) -> Identity:
    """A deterministic identity (seeds from 0 up to 2**32)."""
    return Identity.from_seed(seed.to_bytes(4, "big") * 8 if seed > 255 else bytes([seed]) * 32)


@dataclass
class Space:
    """A room held by its authority's replica, with named people."""

    host: Identity
    replica: Replica
    people: dict[str, Identity] = field(default_factory=dict)
    updates: list[bytes] = field(default_factory=list)

    @classmethod
    def create(cls, title: str = "Lunch talk", max_speakers: int = 10) -> Space:
        host = person(1)
        genesis = room.genesis_record(
            host,
            "Hana",
            title,
            created_ms=1_700_000_000_000,
            nonce=NONCE,
            max_speakers=max_speakers,
        )
        return cls(host, Replica.from_genesis(genesis), {"host": host})

    @property
    def state(self) -> room.RoomState:
        return self.replica.state

    def key(self, name: str) -> NodeId:
        return self.people[name].node_id

    def do(
        self,
        actor: str,
        kind: ActionKind,
        target: str | None = None,
        text: str = "",
        flag: bool = False,
        via: str | None = None,
    ) -> bytes:
        """Have the authority issue ``actor``'s action; returns the signed update."""
        target_key = self.key(target) if target is not None else None
        via_key = self.key(via) if via is not None else None
        data = self.replica.issue(
            self.authority_identity(),
            self.key(actor),
            Action(kind, target_key, text, flag, via_key),
        )
        self.updates.append(data)
        return data

    def authority_identity(self) -> Identity:
        return next(p for p in self.people.values() if p.node_id == self.state.authority)

    def join(self, name: str, seed: int, role: str = "listener", *, relays: bool = True) -> None:
        """Add a member and bring them to ``role`` (listener, speaker or cohost)."""
        self.people[name] = person(seed)
        self.do(name, ActionKind.JOIN, text=name.capitalize(), flag=not relays)
        if role in ("speaker", "cohost"):
            self.do("host", ActionKind.INVITE_SPEAKER, name)
            self.do(name, ActionKind.ACCEPT_INVITE)
        if role == "cohost":
            self.do("host", ActionKind.ADD_COHOST, name)


def full_space() -> Space:
    """Host, two co-hosts, two speakers, two listeners."""
    space = Space.create()
    space.join("cora", 2, "cohost")
    space.join("cole", 3, "cohost")
    space.join("sam", 4, "speaker")
    space.join("sue", 5, "speaker")
    space.join("lee", 6)
    space.join("liv", 7)
    return space
