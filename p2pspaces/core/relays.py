"""The authority's plan of relays: which listeners hear the room through which listener node
(issue 22; docs/design-notes.md, "Relays").

A voice sends each packet once per link.  Past :data:`DIRECT_LISTENERS` listener nodes hearing
the voices straight, the authority gives each further listener a relay (its ``via`` in the
signed state, set by :attr:`~p2pspaces.core.wire.ActionKind.RELAY`): a listener node that
hears the voices itself, did not opt out, is linked to the authority now, and forwards to at
most :data:`~p2pspaces.core.room.RELAY_FANOUT` listeners, the ones whose messages reach the
authority most promptly first (the shell's ``fitness``: a node short of CPU, or on a poor
link, sends its heartbeats late).  When the first tier is full, relayed
listeners relay in turn (at most :data:`~p2pspaces.core.room.RELAY_HOPS` relays deep: with the
defaults, 100 + 800 + 6,400 + 51,200 listeners).

The plan is looked over shortly after any change, at once when a link to the authority
breaks, and every heartbeat while anyone is relayed (:meth:`RelayPlanner.review`).  A relay
not heard from for :data:`RELAY_QUIET_HEARTBEATS` counts as gone: its listeners get another
(or hear straight again), and when the room shrinks, relayed listeners go back to
hearing straight.  Nodes that serve browser guests stay direct (their guests' audio is theirs
to mix), as do voices, which link with everyone anyway.

Each review is one pass over the members (a few milliseconds at 10,000), and a small room
(no more listener nodes than the limit, nobody relayed) costs one count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from p2pspaces.core.identity import NodeId
from p2pspaces.core.room import RELAY_FANOUT, RELAY_HOPS, Role, RoomState
from p2pspaces.core.wire import Action, ActionKind

DIRECT_LISTENERS = 100
"""Listener nodes that hear each voice straight before relays take the rest.  Measured with
``scripts/bench_room.py``: a speaker sending to 200 listeners used about 40% of one core on
this project's 2-core test machine, so 100 keeps a speaker near a fifth of a core with room
for the laptop's own work."""
REVIEW_DELAY_S = 0.2
"""After a change, the plan is looked over this much later (a burst of joins is one pass)."""
CHANGES_PER_REVIEW = 64
"""The most relay changes one review issues (the next review, soon after, does more)."""
BENCH_S = 120.0
"""A relay that passed nothing on to a listener takes no new listeners for this long."""
BENCHED_MAX = 1024
RELAY_QUIET_HEARTBEATS = 2.5
"""A relay the authority has not heard from for this many heartbeats counts as gone for the
plan (its listeners get another), well before its link times out; once heard again it may
take listeners again."""


@dataclass(slots=True)
class _Tiers:
    """One pass over the members: who is direct, who relays for whom."""

    direct: list[NodeId] = field(default_factory=list)
    relayed: list[NodeId] = field(default_factory=list)
    children: dict[NodeId, int] = field(default_factory=dict)
    orphans: list[NodeId] = field(default_factory=list)
    kept: list[NodeId] = field(default_factory=list)
    """Relayed nodes that must hear straight (they came to serve browser guests)."""


def _tiers(
    state: RoomState, keep_direct: frozenset[NodeId], linked: Callable[[NodeId], bool]
) -> _Tiers:
    tiers = _Tiers()
    members = state.members
    for node, member in members.items():
        if member.role != Role.LISTENER or member.gateway is not None:
            continue
        via = member.via
        if node in keep_direct:
            if via is not None:
                tiers.kept.append(node)
            continue
        if via is None:
            tiers.direct.append(node)
            continue
        # Counted whether or not the relay is heard from: a listener that relays for others
        # is never given a relay itself (it goes straight instead), so nobody ends up more
        # than RELAY_HOPS from the voices.
        tiers.children[via] = tiers.children.get(via, 0) + 1
        if linked(via):
            tiers.relayed.append(node)
        else:
            tiers.orphans.append(node)
    return tiers


class RelayPlanner:
    """The authority's side of relays: when to look, and which changes to make."""

    def __init__(self, direct_limit: int = DIRECT_LISTENERS) -> None:
        self.direct_limit = direct_limit
        """Listener nodes that hear the voices straight (at least 1)."""
        self.due: float | None = None
        self.benched: dict[NodeId, float] = {}
        """Relays a listener heard nothing through, and until when they take no one new."""
        self.reporters: dict[NodeId, float] = {}
        """Listeners that benched a relay, and until when they bench no other."""
        self.relaying = False
        """Whether anyone is relayed after the last review's changes (the authority then
        reviews every heartbeat, to notice a relay gone quiet)."""

    def bench(self, relay: NodeId, now: float, reporter: NodeId) -> None:
        """``reporter`` heard nothing through ``relay`` (the voices reach the authority):
        give it no new listeners for :data:`BENCH_S`; a reporter benches at most one relay
        in that time (a listener that keeps asking cannot bench every relay in turn)."""
        if self.reporters.get(reporter, 0.0) > now:
            return
        if len(self.reporters) >= BENCHED_MAX:
            self.reporters = {n: t for n, t in self.reporters.items() if t > now}
            if len(self.reporters) >= BENCHED_MAX:
                self.reporters.clear()
        self.reporters[reporter] = now + BENCH_S
        if len(self.benched) >= BENCHED_MAX:
            self.benched = {n: t for n, t in self.benched.items() if t > now}
            if len(self.benched) >= BENCHED_MAX:
                self.benched.clear()
        self.benched[relay] = now + BENCH_S

    def changed(self, now: float, *, at_once: bool = False) -> None:
        """The room changed (``at_once``: a relay's link broke): look over the plan soon."""
        when = now if at_once else now + REVIEW_DELAY_S
        self.due = when if self.due is None else min(self.due, when)

    def review(
        self,
        state: RoomState,
        linked: Callable[[NodeId], bool],
        now: float = 0.0,
        fitness: Callable[[NodeId], float] = lambda node: 0.0,
    ) -> list[Action]:
        """The relay changes that bring the plan in line with the room now (at most
        :data:`CHANGES_PER_REVIEW`; the caller issues them and calls again if it was full)."""
        self.due = None
        self.direct_limit = max(1, self.direct_limit)
        listeners = sum(1 for m in state.members.values() if m.role == Role.LISTENER)
        self.relaying = any(m.via for m in state.members.values())
        if listeners <= self.direct_limit and not self.relaying:
            return []
        gateways = frozenset(m.gateway for m in state.members.values() if m.gateway is not None)
        tiers = _tiers(state, gateways, linked)
        children = tiers.children
        straight: list[NodeId] = list(tiers.kept)
        needy: list[NodeId] = []
        room = self.direct_limit - len(tiers.direct)
        for node in tiers.orphans:  # their relay is gone: a relay goes straight, or if room
            if children.get(node) or room > 0:
                straight.append(node)
                room -= 1
            else:
                needy.append(node)
        for node in tiers.relayed:  # the room shrank: the longest relayed go straight again
            if room <= 0:
                break
            straight.append(node)
            room -= 1
        staying = tiers.direct
        if room < 0:  # too many straight: the newest that relay for nobody get a relay
            movable = [n for n in reversed(tiers.direct) if not children.get(n)][:-room]
            needy.extend(movable)
            moving = set(movable)
            staying = [n for n in tiers.direct if n not in moving]
        going = set(straight)
        benched = self.benched

        def usable(node: NodeId) -> bool:
            return linked(node) and benched.get(node, 0.0) <= now

        slots = _Slots(
            state,
            staying,
            [n for n in tiers.relayed if n not in going],
            children,
            linked=usable,
            fitness=fitness,
        )
        changes = [Action(ActionKind.RELAY, node, via=None) for node in straight]
        for node in needy:
            changes.append(Action(ActionKind.RELAY, node, via=slots.take(exclude=node)))
        members = state.members
        changes = [c for c in changes if members[NodeId(c.target or b"")].via != c.via]
        changes = changes[:CHANGES_PER_REVIEW]
        self.relaying = self.relaying or any(c.via is not None for c in changes)
        return changes


class _Slots:
    """Relays with room for another listener, nearest the voices first: direct listener nodes,
    then listeners one relay out, and so on; each at most :data:`RELAY_FANOUT` listeners;
    within a tier, the fittest first (lowest ``fitness``: see :class:`RelayPlanner`)."""

    def __init__(
        self,
        state: RoomState,
        direct: list[NodeId],
        relayed: list[NodeId],
        children: dict[NodeId, int],
        *,
        linked: Callable[[NodeId], bool],
        fitness: Callable[[NodeId], float],
    ) -> None:
        members = state.members
        tiers: list[list[NodeId]] = [[] for _ in range(RELAY_HOPS)]
        tiers[0] = [n for n in direct if members[n].relays and linked(n)]
        for node in relayed:
            hops = state.hops(node)
            if hops < RELAY_HOPS and members[node].relays and linked(node):
                tiers[hops].append(node)
        # Within a tier, the nodes that answer most promptly first (spare CPU, a good link; to
        # a tenth of a second), then those that joined first.
        self._order = [
            node for tier in tiers for node in sorted(tier, key=lambda n: round(fitness(n), 1))
        ]
        self._at = 0
        self._children = dict(children)

    def take(self, exclude: NodeId) -> NodeId | None:
        """A relay with a free place (and count it taken), or None: hear straight."""
        order, children = self._order, self._children
        while self._at < len(order) and children.get(order[self._at], 0) >= RELAY_FANOUT:
            self._at += 1
        for node in order[self._at :]:
            if node != exclude and children.get(node, 0) < RELAY_FANOUT:
                children[node] = children.get(node, 0) + 1
                return node
        return None
