"""Every row of the rules table, allowed and refused, and what each action does."""

from __future__ import annotations

import pytest

from p2pspaces.core import statebytes
from p2pspaces.core.errors import Refused
from p2pspaces.core.room import Role
from p2pspaces.core.rules import RULES, Form, authorize
from p2pspaces.core.wire import Action, ActionKind

from .kit import Space, full_space, person

K = ActionKind
Step = tuple[str, ActionKind, str | None] | tuple[str, ActionKind, str, str]
"""(actor, kind, target), or for a relay (actor, kind, target, relay)."""

# (row, setup steps, actor, target, text, flag, expected refusal or None)
CASES: list[tuple[tuple[ActionKind, Form], list[Step], str, str | None, str, bool, str | None]] = [
    ((K.JOIN, Form.SELF), [], "new", None, "Nia", False, None),
    ((K.JOIN, Form.SELF), [("host", K.BLOCK, "new")], "new", None, "Nia", False, "blocked"),
    ((K.JOIN, Form.SELF), [], "lee", None, "Lee", False, "already a member"),
    ((K.JOIN, Form.SELF), [], "new", None, "   ", False, "a name needs a visible character"),
    ((K.JOIN, Form.OTHER), [], "new", "lee", "Nia", False, None),
    ((K.JOIN, Form.OTHER), [], "new", "lee", "", False, "a name needs a visible character"),
    ((K.LEAVE, Form.SELF), [], "lee", None, "", False, None),
    ((K.LEAVE, Form.SELF), [], "new", None, "", False, "not a member"),
    ((K.RAISE_HAND, Form.SELF), [], "lee", None, "", False, None),
    ((K.RAISE_HAND, Form.SELF), [], "sam", None, "", False, "not allowed for a speaker"),
    (
        (K.RAISE_HAND, Form.SELF),
        [("lee", K.RAISE_HAND, None)],
        "lee",
        None,
        "",
        False,
        "already raised",
    ),
    ((K.LOWER_HAND, Form.SELF), [("lee", K.RAISE_HAND, None)], "lee", None, "", False, None),
    ((K.LOWER_HAND, Form.SELF), [], "lee", None, "", False, "hand is not raised"),
    ((K.LOWER_HAND, Form.OTHER), [("lee", K.RAISE_HAND, None)], "cora", "lee", "", False, None),
    (
        (K.LOWER_HAND, Form.OTHER),
        [("lee", K.RAISE_HAND, None)],
        "sam",
        "lee",
        "",
        False,
        "only the host or a co-host",
    ),
    ((K.INVITE_SPEAKER, Form.OTHER), [], "cora", "lee", "", False, None),
    ((K.INVITE_SPEAKER, Form.OTHER), [], "sam", "lee", "", False, "only the host or a co-host"),
    ((K.INVITE_SPEAKER, Form.OTHER), [], "host", "sam", "", False, "cannot be done to a speaker"),
    (
        (K.INVITE_SPEAKER, Form.OTHER),
        [("cora", K.INVITE_SPEAKER, "lee")],
        "host",
        "lee",
        "",
        False,
        "already invited",
    ),
    (
        (K.ACCEPT_INVITE, Form.SELF),
        [("cora", K.INVITE_SPEAKER, "lee")],
        "lee",
        None,
        "",
        False,
        None,
    ),
    ((K.ACCEPT_INVITE, Form.SELF), [], "lee", None, "", False, "not invited"),
    (
        (K.DECLINE_INVITE, Form.SELF),
        [("cora", K.INVITE_SPEAKER, "lee")],
        "lee",
        None,
        "",
        False,
        None,
    ),
    ((K.DECLINE_INVITE, Form.SELF), [], "lee", None, "", False, "not invited"),
    ((K.ACCEPT_HAND, Form.OTHER), [("lee", K.RAISE_HAND, None)], "host", "lee", "", False, None),
    ((K.ACCEPT_HAND, Form.OTHER), [], "host", "lee", "", False, "hand is not raised"),
    (
        (K.ACCEPT_HAND, Form.OTHER),
        [("lee", K.RAISE_HAND, None)],
        "liv",
        "lee",
        "",
        False,
        "only the host or a co-host",
    ),
    ((K.MAKE_LISTENER, Form.SELF), [], "sam", None, "", False, None),
    ((K.MAKE_LISTENER, Form.SELF), [], "lee", None, "", False, "not allowed for a listener"),
    ((K.MAKE_LISTENER, Form.OTHER), [], "cora", "sam", "", False, None),
    ((K.MAKE_LISTENER, Form.OTHER), [], "cora", "cole", "", False, "cannot be done to a cohost"),
    ((K.MAKE_LISTENER, Form.OTHER), [], "liv", "sam", "", False, "only the host or a co-host"),
    ((K.MUTE, Form.SELF), [], "sam", None, "", False, None),
    ((K.MUTE, Form.SELF), [], "lee", None, "", False, "not allowed for a listener"),
    ((K.MUTE, Form.OTHER), [], "cora", "sam", "", False, None),
    ((K.MUTE, Form.OTHER), [], "lee", "sam", "", False, "only the host or a co-host"),
    ((K.MUTE, Form.OTHER), [], "sam", "sue", "", False, "only the host or a co-host"),
    ((K.MUTE, Form.OTHER), [], "cora", "host", "", False, "equal or higher role"),
    ((K.MUTE, Form.OTHER), [], "cora", "cole", "", False, "equal or higher role"),
    ((K.MUTE, Form.OTHER), [("sam", K.MUTE, None)], "host", "sam", "", False, "already muted"),
    ((K.UNMUTE, Form.SELF), [("cora", K.MUTE, "sam")], "sam", None, "", False, None),
    ((K.UNMUTE, Form.SELF), [], "sam", None, "", False, "not muted"),
    ((K.UNMUTE, Form.SELF), [], "lee", None, "", False, "not allowed for a listener"),
    ((K.REMOVE, Form.OTHER), [], "cora", "lee", "", False, None),
    ((K.REMOVE, Form.OTHER), [], "sam", "lee", "", False, "only the host or a co-host"),
    ((K.REMOVE, Form.OTHER), [], "cora", "host", "", False, "equal or higher role"),
    ((K.REMOVE, Form.OTHER), [], "host", "new", "", False, "not a member"),
    ((K.BLOCK, Form.OTHER), [], "host", "lee", "", False, None),
    ((K.BLOCK, Form.OTHER), [], "cora", "new", "", False, None),
    (
        (K.BLOCK, Form.OTHER),
        [("host", K.LEAVE, None)],
        "cora",
        "host",
        "",
        False,
        "the host cannot be blocked",
    ),
    ((K.BLOCK, Form.OTHER), [], "cora", "cole", "", False, "equal or higher role"),
    ((K.BLOCK, Form.OTHER), [], "lee", "liv", "", False, "only the host or a co-host"),
    (
        (K.BLOCK, Form.OTHER),
        [("host", K.BLOCK, "new")],
        "host",
        "new",
        "",
        False,
        "already blocked",
    ),
    ((K.DROP, Form.OTHER), [], "host", "lee", "", False, None),
    ((K.DROP, Form.OTHER), [], "cora", "lee", "", False, "only the room's authority"),
    (
        (K.ADD_COHOST, Form.OTHER),
        [("host", K.REMOVE_COHOST, "cole")],
        "host",
        "sam",
        "",
        False,
        None,
    ),
    ((K.ADD_COHOST, Form.OTHER), [], "host", "sam", "", False, "already has 2 co-hosts"),
    (
        (K.ADD_COHOST, Form.OTHER),
        [("host", K.REMOVE_COHOST, "cole")],
        "cora",
        "sam",
        "",
        False,
        "only the host",
    ),
    ((K.REMOVE_COHOST, Form.OTHER), [], "host", "cora", "", False, None),
    ((K.REMOVE_COHOST, Form.OTHER), [], "cora", "cole", "", False, "only the host"),
    ((K.REMOVE_COHOST, Form.OTHER), [], "host", "sam", "", False, "cannot be done to a speaker"),
    ((K.REMOVE_COHOST, Form.SELF), [], "cora", None, "", False, None),
    ((K.REMOVE_COHOST, Form.SELF), [], "sam", None, "", False, "not allowed for a speaker"),
    ((K.SET_TITLE, Form.SELF), [], "host", None, "New title", False, None),
    ((K.SET_TITLE, Form.SELF), [], "cora", None, "New title", False, "only the host"),
    ((K.SET_TITLE, Form.SELF), [], "host", None, " ", False, "a title needs a visible character"),
    ((K.SET_RECORDING, Form.SELF), [], "host", None, "", True, None),
    ((K.SET_RECORDING, Form.SELF), [], "cora", None, "", True, "only the host"),
    ((K.SET_RECORDING, Form.SELF), [], "host", None, "", False, "already so"),
    ((K.END, Form.SELF), [], "host", None, "", False, None),
    ((K.END, Form.SELF), [], "cora", None, "", False, "only the host"),
    ((K.END, Form.SELF), [], "lee", None, "", False, "only the host"),
    # For a relay, the text column names the relay (see _action).
    ((K.RELAY, Form.OTHER), [], "host", "lee", "liv", False, None),
    ((K.RELAY, Form.OTHER), [], "cora", "lee", "liv", False, "only the room's authority"),
    ((K.RELAY, Form.OTHER), [], "host", "sam", "liv", False, "cannot be done to a speaker"),
    ((K.RELAY, Form.OTHER), [], "host", "lee", "sam", False, "must be a listener node"),
    ((K.RELAY, Form.OTHER), [], "host", "lee", "lee", False, "not another member"),
    ((K.RELAY, Form.OTHER), [], "host", "lee", "new", False, "not another member"),
    ((K.RELAY, Form.OTHER), [], "host", "lee", "", False, "already so"),
    ((K.RELAY, Form.SELF), [("host", K.RELAY, "lee", "liv")], "lee", None, "", False, None),
    ((K.RELAY, Form.SELF), [], "lee", None, "", False, "already so"),
    (
        (K.RELAY, Form.SELF),
        [("host", K.RELAY, "lee", "liv")],
        "lee",
        None,
        "liv",
        False,
        "only ask to hear straight",
    ),
    ((K.RELAY, Form.SELF), [], "sam", None, "", False, "not allowed for a speaker"),
]


def _prepare(steps: list[Step]) -> Space:
    space = full_space()
    space.people["new"] = person(9)
    for actor, kind, target, *via in steps:
        space.do(actor, kind, target, via=via[0] if via else None)
    return space


def _action(space: Space, kind: ActionKind, target: str | None, text: str, flag: bool) -> Action:
    if kind is K.RELAY:  # the text column names the relay
        return Action(
            kind, space.key(target) if target else None, via=space.key(text) if text else None
        )
    return Action(kind, space.key(target) if target else None, text, flag)


@pytest.mark.parametrize(
    ("row", "steps", "actor", "target", "text", "flag", "refusal"),
    CASES,
    ids=[
        f"{c[0][0].value}-{c[0][1].value}-{c[2]}-{c[3]}-{'ok' if c[6] is None else 'no'}"
        for c in CASES
    ],
)
def test_rules_table_row(
    row: tuple[ActionKind, Form],
    steps: list[Step],
    actor: str,
    target: str | None,
    text: str,
    flag: bool,
    refusal: str | None,
) -> None:
    space = _prepare(steps)
    action = _action(space, row[0], target, text, flag)
    before = space.state
    if refusal is None:
        authorize(space.state, space.key(actor), action)
        space.replica.issue(space.host, space.key(actor), action)
        assert space.state.seq == before.seq + 1
    else:
        with pytest.raises(Refused, match=refusal):
            space.replica.issue(space.authority_identity(), space.key(actor), action)
        assert space.state is before


def test_every_row_has_an_allowed_and_a_refused_case() -> None:
    allowed = {c[0] for c in CASES if c[6] is None}
    refused = {c[0] for c in CASES if c[6] is not None}
    assert allowed == set(RULES)
    assert refused == set(RULES)


def test_actions_missing_from_the_table_are_refused() -> None:
    space = full_space()
    with pytest.raises(Refused, match="unmute cannot be done to another member"):
        space.do("cora", K.UNMUTE, "sam")
    with pytest.raises(Refused, match="set_title cannot be done to another member"):
        space.do("host", K.SET_TITLE, "lee", text="x")


@pytest.mark.parametrize("kind", [K.RAISE_HAND, K.LEAVE, K.MUTE, K.SET_TITLE, K.END])
def test_nothing_happens_after_end(kind: ActionKind) -> None:
    space = full_space()
    space.do("host", K.END)
    actor = "lee" if kind in (K.RAISE_HAND, K.LEAVE) else "host"
    with pytest.raises(Refused, match="the room has ended"):
        space.do(actor, kind, None, text="x")


def test_speaker_limit_counts_speakers_beside_host_and_cohosts() -> None:
    space = Space.create(max_speakers=1)
    space.join("sam", 4, "speaker")
    space.join("lee", 6)
    space.do("lee", K.RAISE_HAND)
    with pytest.raises(Refused, match="already has 1 speakers"):
        space.do("host", K.ACCEPT_HAND, "lee")
    space.do("host", K.MAKE_LISTENER, "sam")
    space.do("host", K.ACCEPT_HAND, "lee")
    assert space.state.members[space.key("lee")].role == Role.SPEAKER


def test_hand_queue_is_in_raising_order() -> None:
    space = full_space()
    space.join("max", 8)
    for name in ("liv", "max", "lee"):
        space.do(name, K.RAISE_HAND)
    assert space.state.hand_queue() == [space.key("liv"), space.key("max"), space.key("lee")]
    space.do("host", K.ACCEPT_HAND, "max")
    assert space.state.hand_queue() == [space.key("liv"), space.key("lee")]


def test_block_removes_the_member_and_keeps_them_out() -> None:
    space = full_space()
    space.do("cora", K.BLOCK, "sam")
    assert space.key("sam") not in space.state.members
    with pytest.raises(Refused, match="blocked"):
        space.do("sam", K.JOIN, text="Sam again")


def test_removed_member_may_rejoin_as_listener() -> None:
    space = full_space()
    space.do("cora", K.REMOVE, "sam")
    space.do("sam", K.JOIN, text="Sam")
    assert space.state.members[space.key("sam")].role == Role.LISTENER


def test_muted_speaker_cannot_be_heard_until_they_unmute() -> None:
    space = full_space()
    assert space.state.may_speak(space.key("sam"))
    space.do("cora", K.MUTE, "sam")
    assert not space.state.may_speak(space.key("sam"))
    space.do("sam", K.UNMUTE)
    assert space.state.may_speak(space.key("sam"))
    assert not space.state.may_speak(space.key("lee"))


def test_cohosts_keep_succession_order() -> None:
    space = full_space()
    assert space.state.cohosts == (space.key("cora"), space.key("cole"))
    space.do("host", K.REMOVE_COHOST, "cora")
    space.do("host", K.ADD_COHOST, "cora")
    assert space.state.cohosts == (space.key("cole"), space.key("cora"))


def test_host_leaving_hands_over_to_first_cohost() -> None:
    space = full_space()
    space.do("host", K.LEAVE)
    assert space.state.authority == space.key("cora")
    assert space.state.epoch == 1
    assert not space.state.ended
    # The new authority acts with the host's powers.
    space.do("cora", K.SET_TITLE, text="Carried on")
    assert space.state.title == "Carried on"


def test_host_leaving_without_cohosts_ends_the_room() -> None:
    space = Space.create()
    space.join("lee", 6)
    space.do("host", K.LEAVE)
    assert space.state.ended


# --- browser guests (docs/DESIGN.md section 5b) ---------------------------------------------------


def _with_guest() -> Space:
    """The full space, and Gus, a browser guest served by Lee's node."""
    space = full_space()
    space.people["gus"] = person(20)
    space.do("gus", K.JOIN, "lee", text="Gus")
    return space


def test_a_guest_joins_naming_its_gateway() -> None:
    space = _with_guest()
    gus = space.state.members[space.key("gus")]
    assert (gus.name, gus.role, gus.gateway) == ("Gus", Role.LISTENER, space.key("lee"))
    assert space.state.guests_of(space.key("lee")) == [space.key("gus")]


def test_a_guest_cannot_serve_guests_and_a_gateway_must_be_a_member() -> None:
    space = _with_guest()
    space.people["gia"] = person(21)
    with pytest.raises(Refused, match="a guest cannot be a gateway"):
        space.do("gia", K.JOIN, "gus", text="Gia")
    space.people["out"] = person(22)
    with pytest.raises(Refused, match="the gateway is not a member"):
        space.do("gia", K.JOIN, "out", text="Gia")


def test_a_gateway_drops_its_own_guest_and_no_one_else() -> None:
    space = _with_guest()
    with pytest.raises(Refused, match="only the room's authority or the guest's gateway"):
        space.do("liv", K.DROP, "gus")
    with pytest.raises(Refused, match="only the room's authority or the guest's gateway"):
        space.do("lee", K.DROP, "liv")
    space.do("lee", K.DROP, "gus")
    assert space.key("gus") not in space.state.members


def test_guests_leave_with_their_gateway() -> None:
    for kind in (K.LEAVE, K.REMOVE, K.BLOCK, K.DROP):
        space = _with_guest()
        space.replica.hash()  # the kept member digests are in use from here on
        if kind is K.LEAVE:
            space.do("lee", K.LEAVE)
        else:
            space.do("host", kind, "lee")
        assert space.key("gus") not in space.state.members
        assert space.key("gus") not in space.state.blocked  # only the gateway was blocked
        assert space.replica.hash() == statebytes.state_hash(space.state)
        assert statebytes.decode_state(statebytes.encode_state(space.state)) == space.state


def test_a_guest_speaks_when_invited_but_is_never_a_cohost() -> None:
    space = _with_guest()
    space.do("host", K.INVITE_SPEAKER, "gus")
    space.do("gus", K.ACCEPT_INVITE)
    assert space.state.may_speak(space.key("gus"))
    assert space.key("lee") in space.state.voice_links()
    assert space.key("gus") not in space.state.voice_links()
    with pytest.raises(Refused, match="a browser guest cannot be a co-host"):
        space.do("host", K.ADD_COHOST, "gus")
    with pytest.raises(Refused, match="only the host or a co-host"):
        space.do("gus", K.MUTE, "sam")


@pytest.mark.parametrize("name", ["\u200b\u200b", " \u00a0 ", "\u0301", "\u2060\u200d"])
def test_a_name_or_title_needs_a_character_people_can_see(name: str) -> None:
    """A name of zero-width spaces (or joiners, or a lone combining mark) would show as a blank
    member: it is refused, whoever sends it (a browser guest's page as any node)."""
    space = full_space()
    space.people["blank"] = person(77)
    with pytest.raises(Refused, match="a name needs a visible character"):
        space.do("blank", K.JOIN, text=name)
    with pytest.raises(Refused, match="a title needs a visible character"):
        space.do("host", K.SET_TITLE, text=name)
    space.do("blank", K.JOIN, text="\u200bBea")  # a visible character is enough
