"""Test signals."""

from __future__ import annotations

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.opus import Pcm
from p2pspaces.testing.signals import chirp, write_wav

__all__ = ["chirp", "write_wav"]  # shared with the benchmarks; the rest are the tests' own


def tone(hz: float, seconds: float, rate: int = SAMPLE_RATE, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.sin(2 * np.pi * hz * t) * level


def frames_of(samples: Pcm) -> list[Pcm]:
    usable = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, usable, FRAME_SAMPLES)]


def dominant_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))
