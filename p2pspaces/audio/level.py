"""The speaking indicator: RMS level in dBFS with hysteresis, reported at most 10 times a second.

A member starts "speaking" when a frame is louder than ``on_db``; they become "quiet" once every
frame has been below ``off_db`` for ``hold_ms``.  The gap between the two thresholds and the
hold keep the indicator from flickering between words.  Time comes in as ``now_ms``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from p2pspaces.audio.opus import Pcm

FLOOR_DB = -96.0


def rms_dbfs(frame: Pcm) -> float:
    """RMS level of an int16 frame in dB relative to full scale (a full-scale square is 0)."""
    if len(frame) == 0:
        return FLOOR_DB
    rms = math.sqrt(float(np.mean(np.square(frame.astype(np.float64)))))
    return max(FLOOR_DB, 20 * math.log10(rms / 32768)) if rms > 0 else FLOOR_DB


@dataclass(slots=True)
class LevelMeter:
    """Turns a stream of frames into ``speaking`` / ``quiet`` transitions."""

    on_db: float = -42.0
    off_db: float = -50.0
    hold_ms: int = 300
    min_interval_ms: int = 100
    speaking: bool = False
    level_db: float = FLOOR_DB
    peak_db: float = FLOOR_DB
    """The loudest frame since :meth:`take_peak` was last called."""
    _last_loud_ms: int = -(10**9)
    _last_change_ms: int = -(10**9)

    def __post_init__(self) -> None:
        if self.off_db > self.on_db:
            raise ValueError("the off threshold must not be above the on threshold")

    def take_peak(self) -> float:
        """The loudest frame since the last call (dBFS), and start again."""
        peak, self.peak_db = self.peak_db, FLOOR_DB
        return peak

    def feed(self, frame: Pcm, now_ms: int) -> bool | None:
        """Feed one frame; return True (started speaking), False (went quiet) or None."""
        self.level_db = rms_dbfs(frame)
        self.peak_db = max(self.peak_db, self.level_db)
        if self.level_db >= self.off_db:
            self._last_loud_ms = now_ms
        wanted = self.speaking
        if not self.speaking and self.level_db >= self.on_db:
            wanted = True
        elif self.speaking and now_ms - self._last_loud_ms >= self.hold_ms:
            wanted = False
        if wanted == self.speaking or now_ms - self._last_change_ms < self.min_interval_ms:
            return None
        self.speaking = wanted
        self._last_change_ms = now_ms
        return wanted


class Verdict(enum.StrEnum):
    """How a microphone sounds, from the loudest 20 ms of a check (:func:`verdict`)."""

    SILENT = "silent"
    QUIET = "quiet"
    GOOD = "good"
    LOUD = "loud"


CHECK_SILENT_DB = -60.0
CHECK_QUIET_DB = -40.0
CHECK_LOUD_DB = -3.0

VERDICT_WORDS = {
    Verdict.SILENT: "nothing was heard: check that the right microphone is chosen "
    "(p2pspaces devices lists them) and that it is not muted",
    Verdict.QUIET: "very quiet: speak closer to the microphone or turn its level up",
    Verdict.GOOD: "good: the room will hear you clearly",
    Verdict.LOUD: "very loud, it may distort: move back a little or turn its level down",
}


def verdict(peak_db: float) -> Verdict:
    """How a voice whose loudest 20 ms reached ``peak_db`` (dBFS) will sound to the room."""
    if peak_db < CHECK_SILENT_DB:
        return Verdict.SILENT
    if peak_db < CHECK_QUIET_DB:
        return Verdict.QUIET
    return Verdict.LOUD if peak_db > CHECK_LOUD_DB else Verdict.GOOD
