"""People this node has met: names by fingerprint, kept in the home folder.

A display name is whatever someone types; a key cannot be faked.  The book remembers, for every
host and member this node has been in a room with, the name it used and when it was last seen,
so that the lobby can mark hosts met before, and warn when a known name shows up with a key it
has never used ("the Hana you met had another key").  At most :data:`PEOPLE_MAX` people are
kept (the least recently seen go first); the file is rewritten only when something changed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from p2pspaces.core.events import StateChanged
from p2pspaces.core.identity import NodeId, short_fingerprint

log = logging.getLogger(__name__)

PEOPLE_FILE = "people.json"
PEOPLE_MAX = 2000
WARNINGS_MAX = 1024
"""Name clashes warned about (each once) before the book stops warning."""


class Trust(Enum):
    """What this node knows of a (name, key) pair."""

    KNOWN = "known"
    """Met before under this key."""
    NEW = "new"
    """Never met; the name is new too."""
    CLASH = "clash"
    """Never met under this key, but someone met before used this name with another key."""


@dataclass(frozen=True, slots=True)
class Person:
    """Someone met before."""

    node: NodeId
    name: str
    last_seen: float
    first_seen: float = 0.0
    """When this node first met them (0: before the book kept it)."""


class PeopleBook:
    """Names by key, of the people this node has met; persisted in ``folder`` if given."""

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / PEOPLE_FILE if folder is not None else None
        self.people: dict[NodeId, Person] = {}
        self._dirty = False
        self._warned: set[tuple[NodeId, str]] = set()
        self.room_since = 0.0
        """When we entered the room we are in (:meth:`entering_room`)."""
        self._load()

    def trust(self, node: NodeId, name: str) -> Trust:
        """Whether ``node`` was met before, or its ``name`` belongs to someone else we met."""
        if node in self.people:
            return Trust.KNOWN
        wanted = name.casefold()
        if any(p.name.casefold() == wanted for p in self.people.values()):
            return Trust.CLASH
        return Trust.NEW

    def entering_room(self, now: float | None = None) -> None:
        """We are about to join or host a room: people first met from now on are new."""
        self.room_since = time.time() if now is None else now

    def met_before(self, node: NodeId) -> bool:
        """Whether ``node`` was met before we entered the room we are in."""
        person = self.people.get(node)
        return person is not None and person.first_seen < self.room_since

    def others_named(self, node: NodeId, name: str) -> list[Person]:
        """People met before under ``name`` with a key other than ``node``."""
        wanted = name.casefold()
        return [p for p in self.people.values() if p.name.casefold() == wanted and p.node != node]

    def clash_warning(self, node: NodeId, name: str) -> str | None:
        """A warning in words if ``name`` is known under another key, else None."""
        if node in self.people:
            return None
        others = self.others_named(node, name)
        if not others:
            return None
        keys = ", ".join(short_fingerprint(p.node) for p in others[:3])
        return (
            f"{name} ({short_fingerprint(node)}) is not the {name} you met before ({keys}): "
            "same name, another key"
        )

    def meet_in(self, event: StateChanged, me: NodeId) -> list[str]:
        """Remember the people a room change shows (see :meth:`meet_all` for the warnings).

        A change touches its actor and target only, so only they are looked at (a whole
        roster is read only for a snapshot): an update in a big room stays cheap."""
        roster = event.state.members
        action = event.action
        if action is not None and event.actor is not None:
            nodes = [NodeId(event.actor), *([action.target] if action.target else [])]
        else:
            nodes = list(roster)
        return self.meet_all((n, roster[n].name) for n in nodes if n in roster and n != me)

    def meet_all(self, people: Iterable[tuple[NodeId, str]]) -> list[str]:
        """Remember everyone in a room; return a warning for each known name with a new key
        (once per name and key; such a key is not remembered, so the warning stays true)."""
        warnings = []
        for node, name in people:
            warning = self.clash_warning(node, name)
            if warning is None:
                old = self.people.get(node)
                if old is None or old.name != name:
                    self.meet(node, name)
            elif (node, name) not in self._warned and len(self._warned) < WARNINGS_MAX:
                self._warned.add((node, name))
                warnings.append(warning)
        self.save()
        return warnings

    def meet(self, node: NodeId, name: str, now: float | None = None) -> bool:
        """Remember meeting ``node`` as ``name``; True if it was someone new."""
        when = time.time() if now is None else now
        old = self.people.pop(node, None)
        first = old.first_seen if old is not None else when
        self.people[node] = Person(node, name, when, first)
        if old is None or old.name != name:
            self._dirty = True
        while len(self.people) > PEOPLE_MAX:
            oldest = min(self.people.values(), key=lambda p: p.last_seen)
            del self.people[oldest.node]
        return old is None

    def save(self) -> None:
        """Write the book if it changed (a failure is logged once: the book is a nicety)."""
        if not self._dirty or self._path is None:
            return
        self._dirty = False
        data = {
            p.node.hex(): {
                "name": p.name,
                "last_seen": round(p.last_seen),
                "first_seen": round(p.first_seen),
            }
            for p in self.people.values()
        }
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
            os.replace(tmp, self._path)
        except OSError as exc:
            log.warning("could not save the people you met in %s: %s", self._path, exc)
            self._path = None

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            data = json.loads(self._path.read_text())
            for key, entry in data.items():
                node = NodeId(bytes.fromhex(key))
                if len(node) != 32 or not isinstance(entry.get("name"), str):
                    continue
                last = float(entry.get("last_seen", 0))
                first = float(entry.get("first_seen", 0))
                self.people[node] = Person(node, entry["name"][:32], last, first)
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("ignoring %s, which cannot be read: %s", self._path, exc)
            self.people.clear()
        while len(self.people) > PEOPLE_MAX:
            oldest = min(self.people.values(), key=lambda p: p.last_seen)
            del self.people[oldest.node]
