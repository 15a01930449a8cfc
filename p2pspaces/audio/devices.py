"""Sources and sinks of 20 ms, 48 kHz mono int16 frames, chosen by ``--input`` / ``--output``.

Inputs: ``mic`` or ``mic:DEVICE`` (PortAudio via ``sounddevice``), ``file:PATH`` (any audio file
PyAV/FFmpeg can read, WAV of any rate and channel count included; ``file:PATH?loop`` repeats it),
``tone`` or ``tone:HZ``, ``none``.  Outputs: ``speaker`` or ``speaker:DEVICE``, ``file:PATH`` (a
WAV of everything this node hears, as mixed), ``none``.  DEVICE is a PortAudio index or a part of
a device's name.

``import sounddevice`` raises OSError when the PortAudio library is missing; with PortAudio but
no devices, ``query_devices()`` is empty.  Both become :class:`AudioUnavailable` with the reason.
"""

from __future__ import annotations

import asyncio
import math
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import av
import numpy as np

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.opus import Pcm

FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
TONE_LEVEL = 0.25
SPEAKER_QUEUE = 4


class AudioUnavailable(Exception):
    """No audio device can be used; the reason says why."""


class SourceError(Exception):
    """An input or output that cannot be opened."""


class Source(Protocol):
    """Frames in real time."""

    label: str

    def frames(self) -> AsyncIterator[Pcm]:
        """Yield one frame every 20 ms until closed."""
        ...

    def close(self) -> None:
        """Release the device or file."""


class Sink(Protocol):
    """Where the mix goes."""

    label: str

    def write(self, frame: Pcm) -> None:
        """Take one mixed frame."""

    def close(self) -> None:
        """Flush and release."""


def sounddevice() -> ModuleType:
    """The sounddevice module, or :class:`AudioUnavailable` saying why not."""
    try:
        import sounddevice as sd  # noqa: PLC0415 - optional: PortAudio may be missing
    except (ImportError, OSError) as exc:
        raise AudioUnavailable(
            f"PortAudio is not available ({exc}); on Debian/Ubuntu: apt install libportaudio2"
        ) from None
    module: ModuleType = sd
    return module


def list_devices() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(inputs, outputs) that PortAudio sees, or :class:`AudioUnavailable`."""
    sd = sounddevice()
    devices = [dict(d) | {"index": i} for i, d in enumerate(sd.query_devices())]
    if not devices:
        raise AudioUnavailable("PortAudio found no audio devices (no sound card or sound server)")
    inputs = [d for d in devices if d["max_input_channels"] > 0]
    outputs = [d for d in devices if d["max_output_channels"] > 0]
    return inputs, outputs


def _find_device(spec: str, kind: str) -> int | None:
    inputs, outputs = list_devices()
    candidates = inputs if kind == "input" else outputs
    if not candidates:
        raise AudioUnavailable(f"PortAudio found no {kind} device")
    if not spec:
        return None
    if spec.isdigit() and any(d["index"] == int(spec) for d in candidates):
        return int(spec)
    named = [d for d in candidates if spec.lower() in d["name"].lower()]
    if len(named) == 1 or (named and named[0]["name"].lower() == spec.lower()):
        return int(named[0]["index"])
    names = ", ".join(f"{d['index']}: {d['name']}" for d in candidates)
    raise SourceError(f"no single {kind} device matches {spec!r} (devices: {names})")


def _open_stream(kind: Any, device: int | None, callback: Any, what: str) -> Any:
    """Open and start a PortAudio stream of 20 ms, 48 kHz mono int16 blocks."""
    try:
        stream = kind(
            samplerate=SAMPLE_RATE,
            channels=1,
            dtype="int16",
            blocksize=FRAME_SAMPLES,
            device=device,
            callback=callback,
            latency="low",
        )
        stream.start()
    except sounddevice().PortAudioError as exc:
        raise SourceError(f"cannot open {what}: {exc}") from None
    return stream


# --- sources -------------------------------------------------------------------------------


async def _paced(next_frame: Callable[[], Pcm | None]) -> AsyncIterator[Pcm]:
    """Yield frames on a steady 20 ms schedule (absolute deadlines, so no drift)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    while (frame := next_frame()) is not None:
        yield frame
        deadline += FRAME_S
        delay = deadline - loop.time()
        if delay < -0.2:
            deadline = loop.time()  # we fell far behind (a stalled machine): do not burst
        await asyncio.sleep(max(0.0, delay))


@dataclass
class ToneSource:
    """A sine tone."""

    hz: float = 440.0
    label: str = "tone"

    def frames(self) -> AsyncIterator[Pcm]:
        step = 2 * math.pi * self.hz / SAMPLE_RATE
        phase = [0.0]

        def next_frame() -> Pcm:
            angles = phase[0] + step * np.arange(FRAME_SAMPLES)
            phase[0] = float(angles[-1] + step) % (2 * math.pi)
            frame: Pcm = (np.sin(angles) * TONE_LEVEL * 32767).astype(np.int16)
            return frame

        return _paced(next_frame)

    def close(self) -> None:
        pass


def load_audio(path: Path) -> Pcm:
    """Read an audio file as 48 kHz mono int16 (channels averaged, then resampled)."""
    try:
        container = av.open(str(path))
    except FileNotFoundError:
        raise SourceError(f"no such audio file: {path}") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceError(f"cannot read {path} as audio: {exc}") from None
    with container:
        if not container.streams.audio:
            raise SourceError(f"{path} has no audio stream")
        resampler = av.AudioResampler(format="flt", rate=SAMPLE_RATE)
        chunks = []
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(_mono(out))
            for out in resampler.resample(None):
                chunks.append(_mono(out))
        except av.error.FFmpegError as exc:
            raise SourceError(f"cannot decode {path}: {exc}") from None
    if not chunks:
        raise SourceError(f"{path} holds no audio")
    samples = np.concatenate(chunks)
    pcm: Pcm = np.clip(np.rint(samples * 32767), -32768, 32767).astype(np.int16)
    return pcm


def _mono(frame: av.AudioFrame) -> np.ndarray[Any, np.dtype[np.float32]]:
    channels = len(frame.layout.channels)
    data = frame.to_ndarray().reshape(-1, channels)  # packed float: samples x channels
    mono: np.ndarray[Any, np.dtype[np.float32]] = data.mean(axis=1, dtype=np.float32)
    return mono


class ClipSource:
    """Samples played in real time: once, looped, or (with a gate) after the gate opens.

    Until ``gate`` is set it yields silence; ``started_at`` is then the index of the first clip
    frame among all frames yielded (its pts is ``started_at * 960``).  With ``hold``, silence
    follows the clip instead of the end of input.
    """

    def __init__(
        self,
        samples: Pcm,
        *,
        loop: bool = False,
        gate: asyncio.Event | None = None,
        hold: bool = False,
        label: str = "clip",
    ) -> None:
        padded = -len(samples) % FRAME_SAMPLES
        self.samples = np.concatenate([samples, np.zeros(padded, dtype=np.int16)])
        self.loop = loop
        self.gate = gate
        self.hold = hold
        self.label = label
        self.started_at: int | None = None
        self.finished = asyncio.Event()

    def frames(self) -> AsyncIterator[Pcm]:
        total = len(self.samples) // FRAME_SAMPLES
        quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        state = {"yielded": 0, "position": 0}

        def next_frame() -> Pcm | None:
            state["yielded"] += 1
            if self.gate is not None and not self.gate.is_set():
                return quiet
            if self.started_at is None:
                self.started_at = state["yielded"] - 1
            index = state["position"]
            if index >= total:
                self.finished.set()
                if self.loop:
                    index = 0
                elif self.hold:
                    return quiet
                else:
                    return None
            state["position"] = index + 1
            frame: Pcm = self.samples[index * FRAME_SAMPLES : (index + 1) * FRAME_SAMPLES]
            return frame

        return _paced(next_frame)

    def close(self) -> None:
        pass


class FileSource(ClipSource):
    """An audio file played once (or looped), in real time."""

    def __init__(self, path: Path, loop: bool = False) -> None:
        super().__init__(load_audio(path), loop=loop, label=f"file:{path}")
        self.path = path


class SilentSource:
    """No input: never yields."""

    label = "none"

    async def frames(self) -> AsyncIterator[Pcm]:
        await asyncio.Event().wait()
        yield np.zeros(0, dtype=np.int16)  # pragma: no cover - unreachable

    def close(self) -> None:
        pass


class MicSource:
    """A PortAudio input device."""

    def __init__(self, device: str = "") -> None:
        self._device = _find_device(device, "input")
        self.label = f"mic:{device}" if device else "mic"
        self._stream: Any = None
        self.latency_s = 0.0
        """PortAudio's estimate of the time from the microphone to a block's callback."""

    async def frames(self) -> AsyncIterator[Pcm]:
        sd = sounddevice()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Pcm] = asyncio.Queue(maxsize=10)

        def deliver(frame: Pcm) -> None:
            if queue.full():
                queue.get_nowait()  # never let capture latency build up
            queue.put_nowait(frame)

        def callback(indata: Any, frames: int, time: Any, status: Any) -> None:
            loop.call_soon_threadsafe(deliver, indata[:, 0].copy())

        self._stream = _open_stream(sd.InputStream, self._device, callback, "the microphone")
        self.latency_s = float(self._stream.latency)
        while True:
            yield await queue.get()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


# --- sinks ---------------------------------------------------------------------------------


class WavSink:
    """A 48 kHz mono 16-bit WAV of the mix."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Opened here, not by wave.open(path): a Wave_write whose open fails is left half
            # built, and its __del__ then prints a traceback after our clear error.
            self._handle = path.open("wb")
        except OSError as exc:
            raise SourceError(f"cannot write {path}: {exc.strerror}") from None
        self._file = wave.open(self._handle, "wb")  # noqa: SIM115 - closed in close()
        self._file.setnchannels(1)
        self._file.setsampwidth(2)
        self._file.setframerate(SAMPLE_RATE)
        self.label = f"file:{path}"
        self.path = path

    def write(self, frame: Pcm) -> None:
        self._file.writeframes(frame.astype("<i2").tobytes())

    def close(self) -> None:
        self._file.close()
        self._handle.close()


class SpeakerSink:
    """A PortAudio output device, fed with a small queue (latency over smoothness)."""

    def __init__(self, device: str = "") -> None:
        sd = sounddevice()
        index = _find_device(device, "output")
        self.label = f"speaker:{device}" if device else "speaker"
        self._queue: deque[Pcm] = deque(maxlen=SPEAKER_QUEUE)
        self.on_played: Callable[[Pcm], None] | None = None
        """Called (on PortAudio's thread) with each block as it goes to the device: an echo
        canceller's reference, in step with what is heard, whatever the queue holds."""

        def callback(outdata: Any, frames: int, time: Any, status: Any) -> None:
            frame = self._queue.popleft() if self._queue else None
            if frame is None or len(frame) != frames:
                outdata.fill(0)
            else:
                outdata[:, 0] = frame
            if self.on_played is not None:
                self.on_played(outdata[:, 0].copy())

        self._stream = _open_stream(sd.OutputStream, index, callback, "the speaker")
        self.latency_s = float(self._stream.latency)
        """PortAudio's estimate of the time from a block's callback to the speaker."""

    def write(self, frame: Pcm) -> None:
        self._queue.append(frame)

    def close(self) -> None:
        self._stream.close()


class NullSink:
    """No output."""

    label = "none"

    def write(self, frame: Pcm) -> None:
        pass

    def close(self) -> None:
        pass


# --- choosing ------------------------------------------------------------------------------


def open_input(spec: str) -> Source:
    """The source named by an ``--input`` value."""
    kind, _, rest = spec.partition(":")
    if kind == "none" and not rest:
        return SilentSource()
    if kind == "tone":
        try:
            hz = float(rest) if rest else 440.0
        except ValueError:
            raise SourceError(f"tone:HZ wants a frequency, not {rest!r}") from None
        if not 20 <= hz <= SAMPLE_RATE / 2:
            raise SourceError("a tone must be between 20 Hz and 24 kHz")
        return ToneSource(hz, f"tone:{hz:g}")
    if kind == "file" and rest:
        path, _, option = rest.partition("?")
        if option not in ("", "loop"):
            raise SourceError(f"unknown file option {option!r} (only ?loop)")
        return FileSource(Path(path), loop=option == "loop")
    if kind == "mic":
        return MicSource(rest)
    raise SourceError(
        f"unknown input {spec!r}: use mic[:DEVICE], file:PATH[?loop], tone[:HZ] or none"
    )


def open_output(spec: str) -> Sink:
    """The sink named by an ``--output`` value."""
    kind, _, rest = spec.partition(":")
    if kind == "none" and not rest:
        return NullSink()
    if kind == "file" and rest:
        return WavSink(Path(rest))
    if kind == "speaker":
        return SpeakerSink(rest)
    raise SourceError(f"unknown output {spec!r}: use speaker[:DEVICE], file:PATH or none")


def default_devices() -> tuple[str, str, str | None]:
    """(input, output, why not) for when no --input/--output is given."""
    try:
        inputs, outputs = list_devices()
    except AudioUnavailable as exc:
        return "none", "none", f"no audio devices, running without input and output: {exc}"
    why = None if inputs and outputs else "some audio devices are missing"
    return ("mic" if inputs else "none"), ("speaker" if outputs else "none"), why
