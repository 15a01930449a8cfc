"""The room's recording: while the signed state says "recording", the authority's node writes
the room's audio (the mix plus its own voice) to a WAV file and says where."""

from __future__ import annotations

import time
from pathlib import Path

from p2pspaces.audio.devices import SourceError, WavSink
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.core.errors import ErrorCode
from p2pspaces.core.events import ErrorEvent, Event, Recording
from p2pspaces.core.room import RoomState


class RoomRecorder:
    """Starts and stops the engine's recorder as the recording flag comes and goes."""

    def __init__(self, engine: AudioEngine, folder: Path) -> None:
        self._engine = engine
        self._folder = folder
        self._room = b""

    def follow(self, state: RoomState | None, is_authority: bool) -> Event | None:
        """Match the recorder to the state; return the event to report, if any."""
        wanted = state is not None and is_authority and state.recording
        recorder = self._engine.recorder
        if wanted and recorder is None and state is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            safe = "".join(c if c.isalnum() else "-" for c in state.title)[:40]
            path = self._folder / f"{safe}-{stamp}.wav"
            try:
                self._engine.recorder = WavSink(path)
            except SourceError as exc:
                return ErrorEvent(ErrorCode.RECORDING_FAILED, str(exc))
            self._room = state.room_id
            return Recording(state.room_id, True, str(path))
        if not wanted and isinstance(recorder, WavSink):
            recorder.close()
            self._engine.recorder = None
            return Recording(self._room, False, str(recorder.path))
        return None
