"""Many room sessions in memory: a fake clock and a fake network that can delay, drop,
reorder and partition (trio's and aioquic's habit: the protocol tested without sockets)."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from p2pspaces.core.context import Broadcast, Hangup, Send
from p2pspaces.core.events import Event
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.room import RoomState
from p2pspaces.core.session import Phase, RoomSession
from p2pspaces.core.settings import Timing
from p2pspaces.core.statebytes import state_hash
from p2pspaces.core.wire import Action, ActionKind, RoomId

FAST = Timing(
    heartbeat_s=0.1,
    lease_s=0.3,
    rank_step_s=0.1,
    vote_wait_s=0.15,
    grace_s=0.3,
    pending_join_s=1.0,
    peer_timeout_s=0.5,
    flush_s=0.01,
    resync_s=0.1,
)
"""Every timer ten times shorter than a real node's: the same protocol, faster."""


STEPS_MAX = 200_000
"""Events in one run of the fake network; a healthy room of 20 needs far fewer."""


@dataclass(order=True)
class _Due:
    at: float
    order: int
    run: Callable[[], None] = field(compare=False)


class FakeNet:
    """Sessions joined by links whose messages the test can delay, drop, reorder or cut."""

    def __init__(self, timing: Timing = FAST, *, seed: int = 0, delay: float = 0.002) -> None:
        self.timing = timing
        self.now = 0.0
        self.delay = delay
        self.jitter = 0.0
        """Extra random delay per message: with ``jitter > 0`` messages can overtake."""
        self.loss = 0.0
        self.mdns = True
        """False: multicast is filtered; a node can dial only the address it was given (its
        join target) and the contacts the room relayed."""
        """Probability that one message is lost (the link stays up, as with a bad relay)."""
        self.rng = random.Random(seed)
        self.sessions: dict[NodeId, RoomSession] = {}
        self.events: dict[NodeId, list[Event]] = {}
        self.linked: set[frozenset[NodeId]] = set()
        self.group: dict[NodeId, int] = {}
        self.dead: set[NodeId] = set()
        self.penalized: dict[tuple[NodeId, NodeId], float] = {}
        """(node, peer it dropped for misbehaving) -> when: the peer is kept out a while."""
        self._queue: list[_Due] = []
        self._order = itertools.count()
        self._steps = 0

    # --- building the room ---------------------------------------------------------------

    def add(self, name: str, *, jitter_s: float = 0.0) -> RoomSession:
        """A new node with a fresh identity."""
        session = RoomSession(Identity.generate(), name, self.timing, jitter_s=jitter_s)
        session.set_contact((f"10.0.0.{len(self.sessions) + 1}",), 4000 + len(self.sessions))
        self.sessions[session.me] = session
        self.events[session.me] = []
        self.group[session.me] = 0
        return session

    def host(
        self, session: RoomSession, title: str = "Friday demo", max_speakers: int = 10
    ) -> RoomId:
        room_id = session.host(title, max_speakers, created_ms=1, nonce=bytes(16), now=self.now)
        self.pump(session)
        return room_id

    def join(self, session: RoomSession, authority: RoomSession, *, reclaim: bool = False) -> None:
        state = authority.state
        assert state is not None
        session.join(state.room_id, authority.me, self.now, reclaim=reclaim)
        self.pump(session)

    def room(self, host: RoomSession, *others: RoomSession, title: str = "Friday demo") -> RoomId:
        """Host a room and have ``others`` join it, one after another."""
        room_id = self.host(host, title)
        for other in others:
            self.join(other, host if host.is_authority else self.authority_of(host))
            self.run_until(lambda o=other: o.phase is Phase.MEMBER, limit=5)
        return room_id

    def authority_of(self, session: RoomSession) -> RoomSession:
        state = session.state
        assert state is not None
        return self.sessions[state.authority]

    # --- the network ---------------------------------------------------------------------

    def reachable(self, a: NodeId, b: NodeId) -> bool:
        return a not in self.dead and b not in self.dead and self.group[a] == self.group[b]

    def connect(self, a: NodeId, b: NodeId) -> bool:
        if a == b or frozenset((a, b)) in self.linked or not self.reachable(a, b):
            return False
        refusal = self.sessions[b].linking.admit(a)
        when = self.penalized.get((b, a))
        if when is not None and self.now - when < self.timing.penalty_s:
            refusal = "dropped for misbehaving"
        if refusal is not None:
            self.sessions[a].link_refused(b, f"refused by the peer: {refusal}")
            self.pump(self.sessions[a])
            return False
        self.linked.add(frozenset((a, b)))
        for x, y in ((a, b), (b, a)):
            self.later(self.delay, lambda x=x, y=y: self._link_up(x, y))
        return True

    def _link_up(self, at: NodeId, peer: NodeId) -> None:
        if frozenset((at, peer)) in self.linked:
            self.sessions[at].link_up(peer, self.now)
            self.pump(self.sessions[at])

    def cut(self, a: NodeId, b: NodeId, reason: str = "cut", *, misbehaved: bool = False) -> None:
        pair = frozenset((a, b))
        if pair not in self.linked:
            return
        self.linked.discard(pair)
        for x, y in ((a, b), (b, a)):
            if x not in self.dead:
                self.sessions[x].link_down(y, reason, self.now, misbehaved=misbehaved and x == a)
                self.pump(self.sessions[x])

    def partition(self, *groups: list[RoomSession]) -> None:
        """Split the network: links across groups break (each side notices at its timeout)."""
        for number, members in enumerate(groups, start=1):
            for session in members:
                self.group[session.me] = number
        for pair in list(self.linked):
            a, b = tuple(pair)
            if self.group[a] != self.group[b]:
                self.later(self.timing.peer_timeout_s, lambda a=a, b=b: self._timeout(a, b))

    def heal(self) -> None:
        for node in self.group:
            self.group[node] = 0

    def crash(self, session: RoomSession) -> None:
        """The laptop dies: it sends nothing more; peers notice at their link timeout."""
        self.dead.add(session.me)
        for pair in list(self.linked):
            if session.me in pair:
                a, b = tuple(pair)
                self.later(self.timing.peer_timeout_s, lambda a=a, b=b: self._timeout(a, b))

    def _timeout(self, a: NodeId, b: NodeId) -> None:
        if frozenset((a, b)) in self.linked and not self.reachable(a, b):
            self.cut(a, b, "silent past the timeout")

    def later(self, delay: float, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Due(self.now + delay, next(self._order), run))

    def _deliver(self, sender: NodeId, receiver: NodeId, data: bytes) -> None:
        if frozenset((sender, receiver)) not in self.linked or not self.reachable(sender, receiver):
            return
        session = self.sessions[receiver]
        session.receive(sender, data, self.now)
        self.pump(session)

    def _send(self, me: NodeId, peer: NodeId, data: bytes) -> None:
        if self.rng.random() < self.loss:
            return
        wait = self.delay + self.rng.random() * self.jitter
        self.later(wait, lambda: self._deliver(me, peer, data))

    def pump(self, session: RoomSession) -> None:
        """Carry out what a session decided."""
        me = session.me
        if me in self.dead:
            session.pop_outputs()
            return
        for output in session.pop_outputs():
            if isinstance(output, Broadcast):
                for peer in sorted(session.links):
                    self._send(me, peer, output.data)
            elif isinstance(output, Send):
                self._send(me, output.peer, output.data)
            elif isinstance(output, Hangup):
                if output.penalty:
                    self.penalized[(me, output.peer)] = self.now
                wait = self.timing.flush_s if output.flush else 0.0
                self.later(wait, lambda o=output: self.cut(me, o.peer, o.reason))
        self.events[me].extend(session.pop_events())
        if session.phase is Phase.LEAVING:
            self.later(self.timing.flush_s, session.finish_leaving)
            self.later(self.timing.flush_s, lambda: self.pump(session))

    def _dial_wanted(self) -> None:
        for me, session in self.sessions.items():
            if me in self.dead:
                continue
            for peer in sorted(session.linking.wanted()):
                if (
                    session.linking.should_dial(peer)
                    and peer in self.sessions
                    and self.knows(me, peer)
                ):
                    self.connect(me, peer)
            state = session.state
            if not self.mdns:
                continue
            if state is not None and session.phase in (Phase.MEMBER, Phase.AUTHORITY):
                # What mDNS does: a node sees its room advertised by another authority.
                rivals = [
                    other.me
                    for other in self.sessions.values()
                    if other is not session
                    and other.me != state.authority
                    and other.is_authority
                    and other.state is not None
                    and other.state.room_id == state.room_id
                ]
                for rival in rivals:
                    self.connect(me, rival)

    def knows(self, me: NodeId, peer: NodeId) -> bool:
        """Whether ``me`` can find ``peer``'s address (always, with mDNS)."""
        session = self.sessions[me]
        if self.mdns or session.contact_of(peer) is not None:
            return True
        target = session.member.target
        return target is not None and target[1] == peer

    # --- time ----------------------------------------------------------------------------

    def step(self) -> bool:
        """Run the next thing due; False when nothing is."""
        self._steps += 1
        if self._steps > STEPS_MAX:
            raise AssertionError(f"more than {STEPS_MAX} steps in one run: a timer loop?")
        timers = [
            (t, s)
            for s in self.sessions.values()
            if s.me not in self.dead
            for t in (s.next_timer(),)
            if t is not None
        ]
        next_timer = min(timers, key=lambda item: item[0]) if timers else None
        next_due = self._queue[0].at if self._queue else None
        if next_timer is None and next_due is None:
            return False
        if next_due is not None and (next_timer is None or next_due <= next_timer[0]):
            due = heapq.heappop(self._queue)
            self.now = max(self.now, due.at)
            due.run()
        else:
            assert next_timer is not None
            self.now = max(self.now, next_timer[0])
            next_timer[1].handle_timer(self.now)
            self.pump(next_timer[1])
        self._dial_wanted()
        return True

    def run(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass."""
        self._steps = 0
        end = self.now + seconds
        while True:
            timers = [s.next_timer() for s in self.sessions.values() if s.me not in self.dead]
            soonest = min(
                [t for t in timers if t is not None] + ([self._queue[0].at] if self._queue else []),
                default=None,
            )
            if soonest is None or soonest > end:
                break
            self.step()
        self.now = end

    def run_until(self, done: Callable[[], bool], limit: float = 10.0) -> None:
        self._steps = 0
        end = self.now + limit
        while not done():
            if self.now > end or not self.step():
                raise AssertionError(f"not done after {limit} s of fake time")

    def settle(self, seconds: float = 2.0) -> None:
        self.run(seconds)

    # --- looking ------------------------------------------------------------------------

    def seen(self, session: RoomSession, kind: type[Event]) -> list[Any]:
        return [e for e in self.events[session.me] if isinstance(e, kind)]

    def act(
        self, session: RoomSession, kind: ActionKind, target: RoomSession | None = None, **kw: Any
    ) -> int:
        req = session.request(Action(kind, target.me if target else None, **kw), self.now)
        self.pump(session)
        return req


def hashes(*sessions: RoomSession) -> set[bytes]:
    out = set()
    for session in sessions:
        assert session.state is not None, session.name
        out.add(state_hash(session.state))
    return out


def roles(state: RoomState) -> dict[str, str]:
    return {m.name: m.role.name.lower() for m in state.members.values()}
