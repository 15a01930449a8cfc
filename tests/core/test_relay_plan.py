"""The authority's relay plan in memory (core/relays.py): who relays for whom as a room grows,
loses a relay and shrinks, always within the fan-out and depth limits."""

from __future__ import annotations

from collections import Counter

from p2pspaces.core.identity import NodeId
from p2pspaces.core.relays import CHANGES_PER_REVIEW, RelayPlanner
from p2pspaces.core.room import RELAY_FANOUT, RELAY_HOPS, RoomState
from p2pspaces.core.wire import Action, ActionKind

from .kit import Space


def _room(listeners: int, *, opted_out: frozenset[int] = frozenset()) -> Space:
    space = Space.create()
    for i in range(listeners):
        space.join(f"l{i}", 10 + i, relays=i not in opted_out)
    return space


def _settle(space: Space, planner: RelayPlanner, down: frozenset[NodeId] = frozenset()) -> int:
    """Review and issue until the plan is still; returns how many changes it took."""
    made = 0
    for _ in range(10_000):
        changes = planner.review(space.state, lambda n: n not in down)
        for action in changes:
            space.replica.issue(space.host, space.host.node_id, action)
        made += len(changes)
        if not changes:
            return made
        assert len(changes) <= CHANGES_PER_REVIEW
    raise AssertionError("the plan never settled")


def _shape(state: RoomState) -> tuple[int, Counter[NodeId], int]:
    """Listeners heard straight, listeners per relay, the deepest listener's hops."""
    straight = sum(1 for n, m in state.members.items() if m.via is None and n != state.host)
    per_relay = Counter(m.via for m in state.members.values() if m.via is not None)
    return straight, per_relay, max(state.hops(n) for n in state.members)


def test_a_room_within_the_limit_has_no_relays() -> None:
    space = _room(5)
    assert _settle(space, RelayPlanner(5)) == 0


def test_past_the_limit_each_relay_takes_eight_then_a_second_tier_forms() -> None:
    space = _room(20)
    _settle(space, RelayPlanner(2))
    straight, per_relay, deepest = _shape(space.state)
    assert straight == 2
    assert max(per_relay.values()) <= RELAY_FANOUT
    assert sum(per_relay.values()) == 18
    assert deepest == 2  # 2 x 8 one relay out, the last two one further
    assert sum(1 for n in space.state.members if space.state.hops(n) == 2) == 2


def test_the_listeners_of_a_relay_that_is_gone_get_another() -> None:
    space = _room(12)
    planner = RelayPlanner(3)
    _settle(space, planner)
    relays = Counter(m.via for m in space.state.members.values() if m.via is not None)
    dead = relays.most_common(1)[0][0]
    assert dead is not None
    orphans = [n for n, m in space.state.members.items() if m.via == dead]
    _settle(space, planner, down=frozenset({dead}))
    for node in orphans:
        assert space.state.members[node].via != dead
    _, per_relay, deepest = _shape(space.state)
    assert dead not in per_relay and deepest <= RELAY_HOPS
    assert max(per_relay.values()) <= RELAY_FANOUT


def test_a_shrinking_room_hears_straight_again() -> None:
    space = _room(10)
    planner = RelayPlanner(4)
    _settle(space, planner)
    assert _shape(space.state)[0] == 4
    relays = {m.via for m in space.state.members.values() if m.via is not None}
    assert relays == {space.key("l0")}  # the first takes up to eight
    space.do("l1", ActionKind.LEAVE)  # two who heard straight and relayed for nobody
    space.do("l2", ActionKind.LEAVE)
    _settle(space, planner)
    straight, per_relay, _ = _shape(space.state)
    assert (straight, sum(per_relay.values())) == (4, 4)


def test_nodes_that_opted_out_or_serve_guests_never_relay() -> None:
    space = _room(10, opted_out=frozenset({0, 1}))
    gateway = space.key("l2")
    space.people["gus"] = space.people["l2"].__class__.generate()
    space.replica.issue(space.host, space.key("gus"), Action(ActionKind.JOIN, gateway, "Gus"))
    _settle(space, RelayPlanner(4))
    relays = {m.via for m in space.state.members.values() if m.via is not None}
    assert relays and not relays & {space.key("l0"), space.key("l1"), gateway}
    assert space.state.members[gateway].via is None  # its guests' audio is its to mix


def test_a_room_past_two_tiers_grows_a_third_and_no_more() -> None:
    space = _room(100)
    _settle(space, RelayPlanner(1))
    state = space.state
    hops = Counter(state.hops(n) for n in state.members if n != state.host)
    assert hops == Counter({0: 1, 1: 8, 2: 64, 3: 27})  # 8 each, three relays deep at most
    assert RELAY_HOPS == 3


def test_a_thousand_listeners_fit_in_two_hops_of_a_hundred() -> None:
    space = _room(1000)
    _settle(space, RelayPlanner(100))
    straight, per_relay, deepest = _shape(space.state)
    assert straight == 100
    assert sum(per_relay.values()) == 900
    assert max(per_relay.values()) <= RELAY_FANOUT and deepest <= RELAY_HOPS


def test_a_relayed_node_that_starts_serving_guests_hears_straight_again() -> None:
    space = _room(10)
    planner = RelayPlanner(2)
    _settle(space, planner)
    relayed = next(n for n, m in space.state.members.items() if m.via is not None)
    space.people["gus"] = space.people["l0"].__class__.generate()
    space.replica.issue(space.host, space.key("gus"), Action(ActionKind.JOIN, relayed, "Gus"))
    _settle(space, planner)
    assert space.state.members[relayed].via is None


def test_once_anyone_is_relayed_the_plan_is_watched_every_heartbeat() -> None:
    space = _room(2)
    planner = RelayPlanner(1)
    changes = planner.review(space.state, lambda n: True)
    assert [c.via for c in changes] == [space.key("l0")]
    assert planner.relaying  # so a relay going quiet is noticed, with no other change


def test_the_fittest_listeners_relay_first() -> None:
    space = _room(6)
    slow = {space.key("l0"), space.key("l1")}  # their heartbeats come late: busy, or far
    planner = RelayPlanner(3)
    changes = planner.review(space.state, lambda n: True, 0.0, lambda n: 3.0 if n in slow else 1.0)
    assert {c.via for c in changes} == {space.key("l2")}  # l0 and l1 joined first, but lag


def test_a_listener_that_keeps_asking_benches_one_relay_at_most() -> None:
    space = _room(3)
    planner = RelayPlanner(1)
    asker, first, second = (space.key(n) for n in ("l2", "l0", "l1"))
    planner.bench(first, 0.0, asker)
    planner.bench(second, 1.0, asker)  # the same listener, a second later: not believed
    assert set(planner.benched) == {first}
    planner.bench(second, 1.0, space.key("l0"))
    assert set(planner.benched) == {first, second}
