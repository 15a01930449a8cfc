#!/usr/bin/env python3
"""Voice processing's cost beside the Opus encoder's, per node, in % of one core.

One node that speaks does, every 20 ms: the processing module on the captured frame (two
10 ms halves), the module's far-end pass on the played frame, and one Opus encode.  Each part
runs on speech (espeak-ng) for ``--seconds`` of audio, timed with the process's CPU clock, in
``--runs`` interleaved runs; the figure is the median with the spread (min..max).

    python3 scripts/bench_processing.py [--runs 5] [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.devices import load_audio
from p2pspaces.audio.opus import Encoder
from p2pspaces.audio.processing import ProcessingSettings, VoiceProcessor
from p2pspaces.testing.signals import speech


def percent_of_core(work: Callable[[np.ndarray], object], frames: list[np.ndarray]) -> float:
    """CPU time of ``work`` over ``frames`` as % of the real time those frames last."""
    start = time.process_time()
    for frame in frames:
        work(frame)
    spent = time.process_time() - start
    return 100 * spent / (len(frames) * FRAME_SAMPLES / SAMPLE_RATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = load_audio(speech(Path(tmp) / "speech.wav"))
    needed = int(options.seconds * SAMPLE_RATE)
    audio = np.tile(clip, needed // len(clip) + 1)[:needed]
    frames = [audio[i : i + FRAME_SAMPLES] for i in range(0, needed, FRAME_SAMPLES)]
    frames = [f for f in frames if len(f) == FRAME_SAMPLES]
    parts: dict[str, list[float]] = {"processing (near + far)": [], "Opus encode": []}
    for run in range(options.runs):
        processor = VoiceProcessor(ProcessingSettings())
        encoder = Encoder()

        def both(frame: np.ndarray, processor: VoiceProcessor = processor) -> None:
            processor.far(frame)
            processor.near(frame)

        parts["processing (near + far)"].append(percent_of_core(both, frames))
        parts["Opus encode"].append(percent_of_core(encoder.encode, frames))
        print(
            f"run {run + 1}: processing {parts['processing (near + far)'][-1]:.2f}%, "
            f"Opus encode {parts['Opus encode'][-1]:.2f}% of a core",
            flush=True,
        )
    print(f"\n% of one core per speaking node, median of {options.runs} runs (min..max):")
    for name, values in parts.items():
        print(
            f"  {name:24} {statistics.median(values):5.2f}%  ({min(values):.2f}..{max(values):.2f})"
        )


if __name__ == "__main__":
    main()
