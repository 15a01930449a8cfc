"""The room screen's layout without a terminal: what the room bar says, and to whom."""

from __future__ import annotations

import os

from p2pspaces.app.tui.layout import bar_details, fit_bar
from p2pspaces.core import room
from p2pspaces.core.events import HeardBy
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.wire import Action, ActionKind


def _room() -> tuple[room.RoomState, NodeId, NodeId]:
    hana, ann = Identity.generate(), Identity.generate()
    genesis = room.genesis_record(hana, "Hana", "Bar", created_ms=1, nonce=os.urandom(16))
    state = room.apply(
        room.initial_state(genesis), ann.node_id, Action(ActionKind.JOIN, None, "Ann")
    )
    return state, hana.node_id, ann.node_id


def test_who_hears_a_speaker_is_in_its_room_bar_and_not_in_a_listeners() -> None:
    state, hana, ann = _room()
    some = HeardBy(state.room_id, 1, 2, deaf=("Cy",))
    on_stage = bar_details(state, hana, "Hana", heard=some, address="10.0.0.1:4000", phones=None)
    assert "heard by 1 of 2" in on_stage.plain
    assert any(span.style == "bold yellow" for span in on_stage.spans)  # not everyone: marked
    everyone = bar_details(state, hana, "Hana", heard=HeardBy(state.room_id, 2, 2), address=None,
                           phones=None)  # fmt: skip
    assert "heard by 2 of 2" in everyone.plain
    listening = bar_details(state, ann, "Hana", heard=some, address=None, phones=None)
    assert "heard by" not in listening.plain


def test_the_title_gives_way_first_and_the_bar_never_overflows() -> None:
    state, hana, _ = _room()
    rest = bar_details(state, hana, "Hana", heard=None, address="10.0.0.1:4000", phones=None)
    bar = fit_bar("A very long title " * 5, rest, 60)
    assert bar.cell_len <= 60 and "join address: 10.0.0.1:4000" in bar.plain and "…" in bar.plain
