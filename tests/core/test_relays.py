"""Relays in the signed state: who may be whose relay, and how the plan follows the room."""

from __future__ import annotations

import pytest

from p2pspaces.core import statebytes
from p2pspaces.core.errors import Refused, WireError
from p2pspaces.core.room import RELAY_FANOUT, RELAY_HOPS, Member, Role
from p2pspaces.core.wire import Action, ActionKind

from .kit import Space, full_space

K = ActionKind


def _listeners(space: Space, *names: str, relays: bool = True) -> None:
    for seed, name in enumerate(names, start=20):
        space.join(name, seed, relays=relays)


def _via(space: Space, name: str) -> str | None:
    via = space.state.members[space.key(name)].via
    return next((n for n in space.people if via is not None and space.key(n) == via), None)


def test_a_listener_hears_through_at_most_three_relays() -> None:
    space = full_space()
    _listeners(space, "ann", "bob", "cal", "dee")
    space.do("host", K.RELAY, "ann", via="lee")
    space.do("host", K.RELAY, "bob", via="ann")
    space.do("host", K.RELAY, "cal", via="bob")
    assert space.state.hops(space.key("cal")) == RELAY_HOPS == 3
    with pytest.raises(Refused, match="too far from the voices"):
        space.do("host", K.RELAY, "dee", via="cal")
    # Nor can a relay's own relay be its listener (a loop).
    with pytest.raises(Refused, match="too far from the voices"):
        space.do("host", K.RELAY, "lee", via="bob")
    with pytest.raises(Refused, match="too far from the voices"):
        space.do("host", K.RELAY, "lee", via="ann")


def test_a_relay_given_a_relay_itself_sends_its_listeners_straight() -> None:
    space = full_space()
    _listeners(space, "ann", "bob", "cal")
    space.do("host", K.RELAY, "ann", via="lee")
    space.do("host", K.RELAY, "bob", via="ann")
    space.do("host", K.RELAY, "cal", via="bob")
    space.do("host", K.RELAY, "bob", via="liv")  # bob relays for cal, and now hears via liv
    _agrees(space)
    assert (_via(space, "bob"), _via(space, "cal")) == ("liv", None)
    for action in (K.REMOVE, K.BLOCK):
        space.do("host", K.RELAY, "cal", via="bob")
        space.do("host", action, "bob")
        _agrees(space)
        assert _via(space, "cal") is None
        space.join("bob", 40 if action is K.REMOVE else 41)
    statebytes.decode_state(statebytes.encode_state(space.state))


def test_a_relay_serves_at_most_eight() -> None:
    space = full_space()
    names = [f"n{i}" for i in range(RELAY_FANOUT + 1)]
    _listeners(space, *names)
    for name in names[:RELAY_FANOUT]:
        space.do("host", K.RELAY, name, via="lee")
    with pytest.raises(Refused, match="already serves 8"):
        space.do("host", K.RELAY, names[-1], via="lee")


def test_a_node_that_opted_out_is_never_a_relay() -> None:
    space = full_space()
    _listeners(space, "ann", relays=False)
    assert not space.state.members[space.key("ann")].relays
    with pytest.raises(Refused, match="a listener node that relays"):
        space.do("host", K.RELAY, "lee", via="ann")


def test_no_other_action_names_a_relay() -> None:
    space = full_space()
    with pytest.raises(Refused, match="mute names no relay"):
        space.do("host", K.MUTE, "sam", via="lee")


def test_a_guest_neither_relays_nor_is_relayed() -> None:
    space = full_space()
    space.people["gus"] = space.people["lee"].__class__.generate()
    space.replica.issue(
        space.authority_identity(), space.key("gus"), Action(K.JOIN, space.key("liv"), "Gus")
    )
    with pytest.raises(Refused, match="guest"):
        space.do("host", K.RELAY, "gus", via="lee")
    with pytest.raises(Refused, match="a listener node that relays"):
        space.do("host", K.RELAY, "lee", via="gus")


def _agrees(space: Space) -> None:
    """The replica's running hash (kept up to date bucket by bucket) is the state's own."""
    assert space.replica.hash() == statebytes.state_hash(space.state)


def test_a_relay_that_leaves_or_goes_on_stage_sends_its_listeners_straight() -> None:
    space = full_space()
    _listeners(space, "ann", "bob", "cal")
    space.do("host", K.RELAY, "ann", via="lee")
    space.do("host", K.RELAY, "bob", via="lee")
    space.do("host", K.RELAY, "cal", via="liv")
    space.do("lee", K.LEAVE)
    _agrees(space)
    assert (_via(space, "ann"), _via(space, "bob"), _via(space, "cal")) == (None, None, "liv")
    space.do("host", K.INVITE_SPEAKER, "liv")
    space.do("liv", K.ACCEPT_INVITE)
    _agrees(space)
    assert _via(space, "cal") is None
    space.do("host", K.RELAY, "bob", via="ann")
    space.do("host", K.INVITE_SPEAKER, "bob")
    space.do("bob", K.ACCEPT_INVITE)  # a relayed listener on stage hears straight
    _agrees(space)
    assert _via(space, "bob") is None
    assert space.state.members[space.key("bob")].role is Role.SPEAKER


def test_the_plan_survives_the_state_bytes_and_a_forged_plan_is_refused() -> None:
    space = full_space()
    _listeners(space, "ann")
    space.do("host", K.RELAY, "ann", via="lee")
    data = statebytes.encode_state(space.state)
    assert statebytes.decode_state(data) == space.state
    # A state no change can make: a speaker "relayed" through a listener.
    members = dict(space.state.members)
    sam = space.key("sam")
    members[sam] = Member("Sam", Role.SPEAKER, via=space.key("lee"))
    forged = space.state.__class__(**{**_fields(space), "members": members})
    with pytest.raises(WireError, match="both be listeners"):
        statebytes.decode_state(statebytes.encode_state(forged))
    # A loop of relays.
    members = dict(space.state.members)
    lee, ann = space.key("lee"), space.key("ann")
    members[lee] = Member("Lee", via=ann)
    forged = space.state.__class__(**{**_fields(space), "members": members})
    with pytest.raises(WireError, match="too many relays"):
        statebytes.decode_state(statebytes.encode_state(forged))


def _fields(space: Space) -> dict[str, object]:
    state = space.state
    return {name: getattr(state, name) for name in state.__dataclass_fields__}
