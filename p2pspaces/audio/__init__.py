"""Audio: sources and sinks, Opus encoded once per speaker, jitter buffers, the mixer, levels."""

SAMPLE_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
"""Samples in one 20 ms mono frame at 48 kHz (the unit of everything in this package)."""
