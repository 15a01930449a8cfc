"""Mixing decoded streams with numpy: per-participant gain, saturation instead of wrap-around."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.opus import Pcm

INT16_MAX = 32767
INT16_MIN = -32768


def silence() -> Pcm:
    """One frame of silence."""
    return np.zeros(FRAME_SAMPLES, dtype=np.int16)


def mix(streams: Iterable[tuple[Pcm, float]]) -> Pcm:
    """Sum ``(frame, gain)`` pairs into one frame, clipping at the int16 limits.

    A frame shorter than a full frame (a stream that ran dry) counts as padded with silence;
    no streams at all give silence.
    """
    total = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    for frame, gain in streams:
        if gain < 0:
            raise ValueError("gain cannot be negative")
        length = min(len(frame), FRAME_SAMPLES)
        total[:length] += frame[:length].astype(np.float32) * gain
    # Clip in float before converting: int16 arithmetic would wrap a loud sum to its opposite.
    return np.clip(np.rint(total), INT16_MIN, INT16_MAX).astype(np.int16)
