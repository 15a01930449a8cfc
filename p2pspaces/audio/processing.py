"""Voice processing on the microphone: echo cancellation, noise suppression, a high-pass filter
and automatic gain, as browsers and phone apps do, so that a laptop's own speakers do not come
back to the room as echo, the hall's noise stays out and a quiet talker is heard.

The work is WebRTC's audio processing module (AEC3, its noise suppressor and AGC) through the
``livekit`` wheel's :class:`rtc.AudioProcessingModule`: a well-kept build of the same code the
browsers run, no download at run time, about 0.13 ms per 10 ms frame here.  (Alternatives: the
``webrtc-audio-processing`` bindings on PyPI are old and unmaintained; speexdsp's canceller is
far weaker on real rooms; RNNoise only suppresses noise.)

It sits at the devices, not in the engine: :func:`with_voice_processing` wraps the source so
that each captured frame is cleaned before anything else sees it (meter, encoder), and wraps
the sink so that each frame handed to the speakers is also the canceller's far-end reference.
The module works on 10 ms frames; ours are 20 ms, so each is processed as two halves.  The
reference must be what is heard, when it is heard: a speaker device hands each block over as
it goes to the hardware (``on_played``, on PortAudio's thread, so the module is locked), not
when the engine queues it; the stream delay it is told is the output's and the input's latency
as PortAudio estimates them (a file or a tone has none).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.devices import Sink, Source
from p2pspaces.audio.nearby import NearbySpeakers
from p2pspaces.audio.opus import Pcm

HALF = SAMPLE_RATE // 100
"""Samples in the module's 10 ms frame."""


class ProcessingUnavailable(RuntimeError):
    """The ``livekit`` wheel (its audio processing module) is not installed."""


@dataclass(frozen=True, slots=True)
class ProcessingSettings:
    """What the stage does.  ``headphones``: nothing comes back from speakers, so no echo
    cancellation (it would only dull the voice)."""

    headphones: bool = False
    noise_suppression: bool = True
    auto_gain: bool = True
    high_pass: bool = True


class VoiceProcessor:
    """One node's processing module: ``near`` cleans a captured frame, ``far`` tells it what
    was played."""

    def __init__(self, settings: ProcessingSettings = ProcessingSettings()) -> None:
        try:
            from livekit import rtc  # noqa: PLC0415 - a large wheel: loaded only when used
        except ImportError:
            raise ProcessingUnavailable(
                "voice processing needs the livekit wheel (pip install livekit)"
            ) from None
        self._rtc: Any = rtc
        self.settings = settings
        self._module: Any = self._build(settings)
        self.delay_ms = 0
        self.output_latency_s = 0.0
        """The speaker's latency (set by :func:`with_voice_processing`): part of the delay."""
        self.frames = 0
        self._lock = threading.Lock()
        self.nearby = NearbySpeakers()
        """Whether another laptop's speakers are near this microphone (see
        :mod:`p2pspaces.audio.nearby`); fed only while echo is being cancelled."""

    def _build(self, settings: ProcessingSettings) -> Any:
        return self._rtc.AudioProcessingModule(
            echo_cancellation=not settings.headphones,
            noise_suppression=settings.noise_suppression,
            high_pass_filter=settings.high_pass,
            auto_gain_control=settings.auto_gain,
        )

    def set_headphones(self, headphones: bool) -> None:
        """Headphones on (no echo cancellation) or off, from the next frame."""
        if headphones != self.settings.headphones:
            self.settings = dataclasses.replace(self.settings, headphones=headphones)
            module = self._build(self.settings)
            with self._lock:
                self._module = module

    def set_delay_ms(self, delay_ms: int) -> None:
        """The time from a frame handed to the speakers to its echo reaching ``near``, less
        what is already in the reference's alignment (the device latencies, roughly)."""
        self.delay_ms = max(0, int(delay_ms))

    def near(self, frame: Pcm) -> Pcm:
        """A captured 20 ms frame, cleaned."""
        out = np.empty_like(frame)
        for start in (0, HALF):
            half = self._frame(frame[start : start + HALF])
            with self._lock:
                self._module.set_stream_delay_ms(self.delay_ms)
                self._module.process_stream(half)
            out[start : start + HALF] = np.frombuffer(half.data, dtype=np.int16)
        self.frames += 1
        if not self.settings.headphones:
            self.nearby.near(out)
        return out

    def far(self, frame: Pcm) -> None:
        """A 20 ms frame handed to the speakers: what the canceller removes from ``near``."""
        for start in (0, HALF):
            half = self._frame(frame[start : start + HALF])
            with self._lock:
                self._module.process_reverse_stream(half)
        self.nearby.far(frame)

    def _frame(self, samples: Pcm) -> Any:
        data = np.ascontiguousarray(samples, dtype=np.int16).tobytes()
        return self._rtc.AudioFrame(data, SAMPLE_RATE, 1, HALF)


class ProcessedSource:
    """A source whose frames go through ``processor.near`` first."""

    def __init__(self, inner: Source, processor: VoiceProcessor) -> None:
        self.inner = inner
        self.processor = processor
        self.label = inner.label

    async def frames(self) -> AsyncIterator[Pcm]:
        async for frame in self.inner.frames():
            output = self.processor.output_latency_s
            input_ = getattr(self.inner, "latency_s", 0.0)  # known once the device is open
            self.processor.set_delay_ms(round((output + input_) * 1000))
            yield self.processor.near(frame)

    def close(self) -> None:
        self.inner.close()


class ReferenceSink:
    """A sink that also gives every frame it plays to ``processor.far``: as the device plays
    it, if the device says (``on_played``), else as it is written."""

    def __init__(self, inner: Sink, processor: VoiceProcessor) -> None:
        self.inner = inner
        self.processor = processor
        self.label = inner.label
        self._by_device = hasattr(inner, "on_played")
        if self._by_device:
            inner.on_played = processor.far  # type: ignore[attr-defined]

    def write(self, frame: Pcm) -> None:
        if not self._by_device:
            self.processor.far(frame)
        self.inner.write(frame)

    def close(self) -> None:
        self.inner.close()


def with_voice_processing(
    source: Source, sink: Sink, settings: ProcessingSettings = ProcessingSettings()
) -> tuple[ProcessedSource, ReferenceSink, VoiceProcessor]:
    """``source`` cleaned by one processing module whose echo reference is what ``sink``
    plays; the delay is set from the devices' own latency (``latency_s``), if they say."""
    processor = VoiceProcessor(settings)
    processor.output_latency_s = getattr(sink, "latency_s", 0.0)
    processed = ProcessedSource(source, processor)
    return processed, ReferenceSink(sink, processor), processor


def processor_of(source: object) -> VoiceProcessor | None:
    """The voice processor cleaning ``source`` (a node's input), if any."""
    return source.processor if isinstance(source, ProcessedSource) else None
