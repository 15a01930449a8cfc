"""The sentences people read: shared names are told apart, multi-line chat keeps its lines."""

from __future__ import annotations

import dataclasses

from p2pspaces.app.words import Narrator, Tone, heard_by
from p2pspaces.core.events import (
    ChatReceived,
    ErrorEvent,
    HeardBy,
    ReactionReceived,
    RoomFound,
    Speaking,
    StateChanged,
)
from p2pspaces.core.identity import short_fingerprint
from p2pspaces.core.wire import Action, ActionKind
from tests.core.kit import Space, person

from ..session.kit import FakeNet


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


def test_a_reason_that_is_a_sentence_is_not_given_a_second_full_stop() -> None:
    reason = "2 Spaces are called 'Demo': … Join one by its room id (or a unique prefix of it)."
    [line] = Narrator(b"k" * 32).tell(ErrorEvent("command_failed", reason))
    assert line.text.endswith("prefix of it).") and not line.text.endswith("..")


def test_plain_mode_in_a_room_does_not_repeat_the_rooms_own_lobby_changes() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    state = ann.state
    assert state is not None
    narrator = Narrator(ann.me)
    narrator.tell(StateChanged(state))
    ours = RoomFound(state.room_id, state.title, hana.me, "Hana", 1, 1, changed=True)
    other = RoomFound(b"o" * 32, "Other", b"k" * 32, "Kim", 1, 0)
    assert narrator.tell(ours) == []  # said once already, as "Ann joined"
    assert narrator.tell(dataclasses.replace(other, changed=True)) == []
    [found] = narrator.tell(other)
    assert found.text.startswith("Space found: 'Other'")


def test_plain_mode_says_who_is_speaking_when_the_voice_changes() -> None:
    room, ann, bob, me = b"r" * 32, b"a" * 32, b"b" * 32, b"m" * 32
    narrator = Narrator(me)

    def said(member: bytes, name: str) -> list[str]:
        return [line.text for line in narrator.tell(Speaking(room, member, name, -20.0))]

    assert said(ann, "Ann") == ["Ann is speaking."]
    assert said(ann, "Ann") == []  # a pause and on: not again
    assert said(bob, "Bob") == ["Bob is speaking."]
    assert said(me, "Me") == []
    assert Narrator(me, keys=True).tell(Speaking(room, ann, "Ann", -20.0)) == []  # the app: a dot


def test_a_speaker_is_told_plainly_who_hears_it() -> None:
    room = b"r" * 32
    [everyone] = heard_by(HeardBy(room, 3, 3))
    assert everyone.text == "Everyone hears you (3 of 3)."
    [some] = heard_by(HeardBy(room, 1, 3, quiet=("Bob",), deaf=("Cy",)))
    assert some.tone is Tone.WARN
    assert some.text == (
        "Heard by 1 of 3. Not heard at all by Cy: their audio may be off."
        " Heard very quietly by Bob: speak closer to the microphone."
    )
    many = tuple(f"P{n}" for n in range(8))
    [crowd] = heard_by(HeardBy(room, 0, 8, deaf=many))
    assert "P0, P1, P2, P3, P4 and 3 more" in crowd.text


def test_a_member_that_missed_changes_is_told_what_they_did_once_it_catches_up() -> None:
    net = FakeNet()
    hana, ann, bob, cy = net.add("Hana"), net.add("Ann"), net.add("Bob"), net.add("Cy")
    net.room(hana, ann, bob)
    net.settle(0.5)
    narrator = Narrator(ann.me)
    told = 0

    def lines() -> list[str]:
        nonlocal told
        new, told = net.events[ann.me][told:], len(net.events[ann.me])
        return [line.text for e in new if isinstance(e, StateChanged) for line in narrator.tell(e)]

    lines()
    net.loss = 1.0  # Ann hears nothing while Hana blocks Bob and renames the Space
    net.act(hana, ActionKind.BLOCK, bob)
    net.act(hana, ActionKind.SET_TITLE, text="After the break")
    net.act(hana, ActionKind.INVITE_SPEAKER, ann)
    net.run(0.2)
    net.loss = 0.0
    net.join(cy, hana)
    net.run_until(lambda: ann.state is not None and ann.state.title == "After the break")
    said = lines()
    assert said[0] == "The Space is now called 'After the break'.", said
    assert "You are invited to speak: /yes to accept, /no to decline." in said, said
    assert "Bob was blocked." in said, said
    assert not any("Hana blocked" in line for line in said)  # who did it is not in a snapshot
