"""Sounds to test with: speech (espeak-ng, as CI installs it), a voice-like chirp, WAV files."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.opus import Pcm

SPOKEN = "Welcome to the Friday demo. Peer to peer spaces carry voices across the room."


OTHER_SPOKEN = (
    "The quick brown fox jumps over the lazy dog, while the band plays on the stage tonight"
)


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


def speech(path: Path, *, other: bool = False) -> Path:
    """Speech made with espeak-ng (as CI installs it), else a voice-like chirp.  ``other``: a
    second talker (another voice, other words), for the far end of a conversation."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        voice = ["-v", "en+f3", "-p", "70"] if other else []
        words = OTHER_SPOKEN if other else SPOKEN
        subprocess.run([espeak, *voice, "-w", str(path), words], check=True, timeout=30)
        return path
    return write_wav(path, chirp(4.0, 500.0, 4000.0 if other else 3000.0) / 32767)
