"""Test signals."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.opus import Pcm


def tone(hz: float, seconds: float, rate: int = SAMPLE_RATE, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.sin(2 * np.pi * hz * t) * level


def chirp(seconds: float = 3.0, start: float = 200.0, stop: float = 3000.0) -> Pcm:
    """A sweep with a syllable-like envelope: aligns unambiguously."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * (start * t + (stop - start) * t**2 / (2 * seconds))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (np.sin(phase) * envelope * 0.4 * 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    """Write float samples in -1..1 (shape (n,) or (n, channels)) as 16-bit PCM."""
    data = np.clip(np.rint(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())
    return path


def frames_of(samples: Pcm) -> list[Pcm]:
    usable = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
    return [samples[i : i + FRAME_SAMPLES] for i in range(0, usable, FRAME_SAMPLES)]


def dominant_hz(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(samples))
