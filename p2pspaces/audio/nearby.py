"""Another laptop's speakers near this microphone: the room's voices come back from them.

Echo cancellation removes what this laptop's own speakers play.  A second laptop beside it
plays the same voices a little later (its network and jitter buffer differ); when the lag is
longer than the canceller's filter (here: over about 20 ms), its sound stays in the cleaned
microphone, and the room hears itself again, or a howl when this laptop's own voice comes back
from there.  What gives it away is that the cleaned microphone still resembles what this
laptop played, a few tens to hundreds of milliseconds before.

Once a second (while the room's voices were playing), :class:`NearbySpeakers` takes the
largest normalized correlation between the last second of the cleaned microphone and what
was played 5 to 300 ms earlier.  On the simulated room (tests/audio/test_processing.py) it is
0.07 to 0.12 with one laptop (the canceller leaves little), 0.16 to 0.39 with a second laptop
60 to 120 ms behind at a tenth to a third of the level; a person talking over it hides it
(0.02 to 0.13), so the median of the last five seconds must pass 0.14 before it is said.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.level import rms_dbfs
from p2pspaces.audio.opus import Pcm

WINDOW = SAMPLE_RATE
"""Samples of the microphone compared at a time (one second)."""
LAG_MIN = SAMPLE_RATE * 5 // 1000
LAG_MAX = SAMPLE_RATE * 300 // 1000
"""How much later than it was played a nearby laptop's sound may reach the microphone."""
SCORES = 5
"""Seconds whose median decides."""
THRESHOLD = 0.14
"""The median correlation above which another laptop's speakers are taken to be near."""
PLAYING_DBFS = -50.0
"""A second whose playback was quieter than this tells nothing (there was nothing to hear)."""


def resemblance(near: np.ndarray, far: np.ndarray) -> float:
    """The largest normalized correlation between ``near`` (a window of the microphone) and
    ``far`` (what was played from ``LAG_MAX`` before that window to ``LAG_MIN`` before its
    end), over those lags."""
    n = 1 << int(np.ceil(np.log2(len(near) + len(far))))
    corr = np.fft.irfft(np.conj(np.fft.rfft(near, n)) * np.fft.rfft(far, n), n)
    shifts = np.arange(len(far) - len(near) + 1)
    energy = np.concatenate([[0.0], np.cumsum(far * far)])
    far_norm = np.sqrt(energy[shifts + len(near)] - energy[shifts]) + 1e-9
    near_norm = float(np.sqrt(np.sum(near * near))) + 1e-9
    return float(np.max(np.abs(corr[shifts]) / (far_norm * near_norm)))


class NearbySpeakers:
    """Fed what is played (:meth:`far`) and the cleaned microphone (:meth:`near`), frame by
    frame as they happen; :attr:`heard` says whether another laptop's speakers are near."""

    def __init__(self) -> None:
        self._far: deque[Pcm] = deque(maxlen=(WINDOW + LAG_MAX) // FRAME_SAMPLES + 1)
        self._near: list[Pcm] = []
        self.scores: deque[float] = deque(maxlen=SCORES)

    def far(self, frame: Pcm) -> None:
        """A frame handed to the speakers."""
        self._far.append(frame)

    def near(self, frame: Pcm) -> None:
        """A cleaned microphone frame; once a second, the comparison."""
        self._near.append(frame)
        if len(self._near) * FRAME_SAMPLES < WINDOW:
            return
        near = np.concatenate(self._near).astype(np.float64)
        self._near = []
        frames = list(self._far)  # one step under the GIL: far() may run on the device thread
        if len(frames) < (self._far.maxlen or 0):
            return
        far = np.concatenate(frames).astype(np.float64)
        played = far[len(far) - WINDOW - LAG_MAX : len(far) - LAG_MIN]
        if rms_dbfs(played.astype(np.int16)) < PLAYING_DBFS:
            return
        self.scores.append(resemblance(near, played))

    @property
    def heard(self) -> bool:
        """The median of the last seconds' resemblance is above :data:`THRESHOLD`."""
        return len(self.scores) == SCORES and statistics.median(self.scores) > THRESHOLD
