"""What a node keeps beyond the room's state: the room it hosts, and the room's recording.

* :class:`HostedRoom`: a host notes the id of the room it hosts in its home folder, so that after
  a crash the same ``start --host TITLE`` finds the room its co-host kept going, rejoins and
  reclaims it (DESIGN.md section 3); leaving or ending the room forgets it.
* :class:`RoomRecorder`: while the signed state says "recording", the authority's node writes
  the room's audio (the mix plus its own voice) to a WAV file and says where.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from p2pspaces.audio.devices import SourceError, WavSink
from p2pspaces.audio.engine import AudioEngine
from p2pspaces.core.room import RoomState
from p2pspaces.events import ErrorEvent, Event, Recording

HOSTING_FILE = "hosting.json"


class HostedRoom:
    """The room this node hosts, remembered in ``folder`` (nothing is kept without one)."""

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / HOSTING_FILE if folder is not None else None

    def remember(self, room_id: bytes, title: str) -> None:
        """Note the room we now host."""
        if self._path is None:
            return
        with contextlib.suppress(OSError):
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_text(json.dumps({"room": room_id.hex(), "title": title}))

    def forget(self, room_id: bytes) -> None:
        """Forget the hosted room once it is left or ended (and only that room)."""
        if self._path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self._path.read_text()).get("room") == room_id.hex():
                self._path.unlink()

    def room_titled(self, title: str) -> str | None:
        """The id (hex) of the room we hosted under ``title``, if we remember one."""
        if self._path is None:
            return None
        try:
            saved = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("title") != title:
            return None
        room = saved.get("room")
        return room if isinstance(room, str) else None


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
                return ErrorEvent("recording_failed", str(exc))
            self._room = state.room_id
            return Recording(state.room_id, True, str(path))
        if not wanted and isinstance(recorder, WavSink):
            recorder.close()
            self._engine.recorder = None
            return Recording(self._room, False, str(recorder.path))
        return None
