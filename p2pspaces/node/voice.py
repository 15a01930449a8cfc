"""The audio engine, hooked to the room session: whose audio is sent and played (the signed
state decides), and speaking indicators as events."""

from __future__ import annotations

from collections.abc import Callable

from p2pspaces.audio.devices import NullSink, SilentSource, Sink, Source
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.core import lifecycle
from p2pspaces.core.events import Event, Quiet, Speaking
from p2pspaces.core.session import RoomSession
from p2pspaces.node.config import Faults

NO_FAULTS = Faults()


def voice_engine(
    session: RoomSession,
    source: Source | None,
    sink: Sink | None,
    *,
    clock: Callable[[], float],
    emit: Callable[[Event], None],
    faults: Faults = NO_FAULTS,
) -> AudioEngine:
    """An engine that sends only while we are an unmuted speaker and plays only those who are."""

    def on_level(member: bytes, speaking: bool, level_db: float) -> None:
        state = session.state
        if state is None or not lifecycle.in_room(session.phase):
            return
        name = session.name_of(member)
        if speaking:
            emit(Speaking(state.room_id, member, name, level_db))
        else:
            emit(Quiet(state.room_id, member, name))

    engine = AudioEngine(
        session.me,
        source or SilentSource(),
        sink or NullSink(),
        clock,
        on_level,
        fault_drop=faults.drop,
    )
    engine.fault_jitter_ms = faults.jitter_ms
    engine.may_send = lambda: session.may_speak(session.me)
    engine.allowed = session.may_speak
    return engine
