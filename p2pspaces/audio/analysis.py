"""Checking what arrived: align a recording with its source and measure mouth-to-ear delay.

Used by ``p2pspaces demo``, the end-to-end tests and the latency benchmark, so that all three
judge audio the same way: by content, not by the mere presence of bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.opus import Pcm


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where a source starts inside a recording, and how well they match there."""

    lag: int
    """Recording sample index at which source sample 0 falls (may be negative)."""
    correlation: float
    """Normalised cross-correlation over the overlap (1.0 is identical up to gain)."""
    overlap: int
    """Samples compared."""


def align(recording: Pcm, source: Pcm) -> Alignment:
    """Find the lag that best matches ``source`` inside ``recording`` (FFT cross-correlation)."""
    rec = recording.astype(np.float64)
    src = source.astype(np.float64)
    if not len(rec) or not len(src):
        return Alignment(0, 0.0, 0)
    size = 1 << int(np.ceil(np.log2(len(rec) + len(src))))
    spectrum = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(src, size))
    scores = np.fft.irfft(spectrum, size)
    # scores[k] pairs rec[k + i] with src[i]; negative lags wrap to the end of the array.
    lags = np.concatenate([np.arange(0, len(rec)), np.arange(-len(src) + 1, 0)])
    values = np.concatenate([scores[: len(rec)], scores[size - len(src) + 1 :]])
    lag = int(lags[int(np.argmax(values))])
    return Alignment(lag, *_ncc(rec, src, lag))


def _ncc(rec: np.ndarray, src: np.ndarray, lag: int) -> tuple[float, int]:
    start = max(0, lag)
    stop = min(len(rec), lag + len(src))
    if stop <= start:
        return 0.0, 0
    a = rec[start:stop]
    b = src[start - lag : stop - lag]
    energy = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return (float(np.dot(a, b)) / energy if energy else 0.0), stop - start


def chunk_correlations(recording: Pcm, source: Pcm, chunk_s: float = 1.0) -> list[float]:
    """Align each ``chunk_s`` piece of ``source`` inside ``recording`` on its own.

    Robust to a playout that grew or shrank its delay mid-way (one inserted or skipped frame
    shifts everything after it, which a single global alignment would count as a mismatch).
    """
    size = int(chunk_s * SAMPLE_RATE)
    scores = []
    for start in range(0, len(source) - size + 1, size):
        piece = source[start : start + size]
        if np.abs(piece).max() > 1000:  # skip near-silent pieces: nothing to recognise
            scores.append(align(recording, piece).correlation)
    return scores


def frame_delays(
    alignment: Alignment, handed: dict[int, float], first_pts: int, ticks: list[float], frames: int
) -> list[float]:
    """Mouth-to-ear delay, in seconds, of each source frame found in the recording.

    ``handed`` maps a frame's pts to the time the speaker's pipeline took it; the source's frame
    ``k`` has pts ``first_pts + k * 960``.  ``ticks[i]`` is when recording frame ``i`` left the
    listener's playout.  The first sample of frame ``k`` is recording sample
    ``s = lag + k * 960`` (the lag includes Opus's own delay), which leaves the playout at
    ``ticks[s // 960] + (s % 960) / 48000``.
    """
    delays = []
    for k in range(frames):
        sample = alignment.lag + k * FRAME_SAMPLES
        index, offset = divmod(sample, FRAME_SAMPLES)
        sent = handed.get(first_pts + k * FRAME_SAMPLES)
        if sent is not None and 0 <= index < len(ticks):
            delays.append(ticks[index] + offset / SAMPLE_RATE - sent)
    return delays


def seconds(samples: int) -> float:
    """Samples at 48 kHz to seconds."""
    return samples / SAMPLE_RATE
