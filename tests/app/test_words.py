"""The sentences people read: shared names are told apart, multi-line chat keeps its lines."""

from __future__ import annotations

from p2pspaces.app.words import Narrator
from p2pspaces.core.events import ChatReceived, ReactionReceived, StateChanged
from p2pspaces.core.identity import short_fingerprint
from p2pspaces.core.wire import Action, ActionKind
from tests.core.kit import Space, person


def test_two_people_with_one_name_are_told_apart_by_fingerprint() -> None:
    space = Space.create()
    space.join("ann", 2)
    space.join("bob", 3)
    space.people["other"] = person(5)
    space.do("other", ActionKind.JOIN, text="ann")  # another Ann (names compare casefolded)
    me = space.key("bob")
    narrator = Narrator(me)
    narrator.tell(StateChanged(space.state))
    real, other = space.key("ann"), space.key("other")

    before = space.state
    space.do("host", ActionKind.REMOVE, "other")
    [line] = narrator.tell(
        StateChanged(space.state, space.key("host"), Action(ActionKind.REMOVE, other))
    )
    assert line.text == f"Hana removed ann ({short_fingerprint(other)})."
    assert before.members[real].name == "Ann"

    # Once the other Ann is gone, Ann is Ann again.
    [chat] = narrator.tell(ChatReceived(space.state.room_id, real, "Ann", "hi"))
    assert chat.text == "Ann: hi"


def test_a_shared_name_in_chat_and_reactions_carries_the_fingerprint() -> None:
    space = Space.create()
    space.join("ann", 2)
    space.people["other"] = person(5)
    space.do("other", ActionKind.JOIN, text="Ann")
    narrator = Narrator(space.key("host"))
    narrator.tell(StateChanged(space.state))
    other = space.key("other")
    [chat] = narrator.tell(ChatReceived(space.state.room_id, other, "Ann", "I am Ann"))
    assert chat.text == f"Ann ({short_fingerprint(other)}): I am Ann"
    [clap] = narrator.tell(ReactionReceived(space.state.room_id, other, "Ann", "👏"))
    assert clap.text.startswith(f"Ann ({short_fingerprint(other)}) reacts")


def test_a_multi_line_chat_keeps_its_lines_and_a_wall_of_lines_is_cut_with_a_word() -> None:
    narrator = Narrator(b"m" * 32)
    [chat] = narrator.tell(ChatReceived(b"r" * 32, b"a" * 32, "Ann", "one\ntwo\n\x1b[2Jthree"))
    assert chat.text == "Ann: one\n  two\n  \\u001b[2Jthree"  # each line made printable
    [wall] = narrator.tell(ChatReceived(b"r" * 32, b"a" * 32, "Ann", "x\n" * 100))
    assert wall.text.count("\n") == 11 and wall.text.endswith("… (90 more lines)")
