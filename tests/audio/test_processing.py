"""Voice processing on a simulated room: a laptop's own speakers heard by its microphone
through a room's echo (RT60 about 300 ms), a quiet talker, and a talker alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.analysis import chunk_correlations
from p2pspaces.audio.devices import ClipSource, load_audio
from p2pspaces.audio.processing import (
    ProcessingSettings,
    VoiceProcessor,
    with_voice_processing,
)
from p2pspaces.testing.signals import speech


def room_echo(far: np.ndarray, rt60_s: float = 0.3, level: float = 0.5) -> np.ndarray:
    """``far`` as a microphone hears it from the laptop's own speaker: a direct path 4 ms away
    and a reverberant tail (exponentially decaying noise) reaching -60 dB at ``rt60_s``."""
    rng = np.random.default_rng(3)
    t = np.arange(int(0.4 * SAMPLE_RATE)) / SAMPLE_RATE
    response = rng.standard_normal(len(t)) * np.exp(-6.9 * t / rt60_s)
    direct = int(0.004 * SAMPLE_RATE)
    response[:direct] = 0
    response[direct] = 3
    response /= np.sqrt(np.sum(response**2))
    return np.convolve(far, response)[: len(far)] * level


def run(processor: VoiceProcessor, mic: np.ndarray, played: np.ndarray) -> np.ndarray:
    """Each 20 ms: what the speakers played, then what the microphone heard meanwhile."""
    out = []
    for start in range(0, len(mic) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = slice(start, start + FRAME_SAMPLES)
        processor.far(np.clip(played[frame], -32768, 32767).astype(np.int16))
        out.append(processor.near(np.clip(mic[frame], -32768, 32767).astype(np.int16)))
    return np.concatenate(out).astype(np.float64)


def power(x: np.ndarray) -> float:
    return float(np.mean(x**2)) + 1e-9


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    clip = load_audio(speech(tmp_path_factory.mktemp("voice") / "speech.wav"))
    return np.tile(clip.astype(np.float64), 4)[: 12 * SAMPLE_RATE]


def test_the_rooms_echo_of_the_laptops_own_speaker_is_cancelled(voice: np.ndarray) -> None:
    echo = room_echo(voice)
    out = run(VoiceProcessor(), echo, voice)
    converged = slice(8 * SAMPLE_RATE, 12 * SAMPLE_RATE)
    erle_db = 10 * np.log10(power(echo[converged]) / power(out[converged]))
    assert erle_db >= 30, f"echo return loss enhancement {erle_db:.1f} dB"


def test_in_double_talk_the_near_end_voice_survives(voice: np.ndarray, tmp_path: Path) -> None:
    """Both talk at once: the far end's voice through the room's echo, and the near talker.
    What the room gets keeps the near voice, compared per second with the clean voice
    high-passed as the stage does (the filter that takes out rumble is meant to change the
    waveform: alone it keeps 0.80 of the raw voice's correlation).  Measured 0.70 for this
    pair of talkers (0.85 for a lower far voice): short of the 0.85 aimed at in every case
    (issue 21, still open); this guards against it getting worse."""
    far_clip = load_audio(speech(tmp_path / "far.wav", other=True)).astype(np.float64)
    far = np.tile(far_clip, 1 + len(voice) // len(far_clip))[: len(voice)]
    out = run(VoiceProcessor(), voice + room_echo(far), far)
    filtered = ProcessingSettings(headphones=True, noise_suppression=False, auto_gain=False)
    reference = run(VoiceProcessor(filtered), voice, np.zeros_like(voice))  # high-passed only
    later = slice(6 * SAMPLE_RATE, len(out))  # once converged
    kept = float(np.median(chunk_correlations(out[later], reference[later].astype(np.int16))))
    assert kept >= 0.65, f"the near voice keeps {kept:.2f}"


def test_with_headphones_nothing_is_cancelled(voice: np.ndarray) -> None:
    """--headphones (or the app's Ctrl+E): no echo canceller (there is no echo; it would only
    dull the voice)."""
    echo = room_echo(voice)
    processor = VoiceProcessor(ProcessingSettings(noise_suppression=False, auto_gain=False))
    processor.set_headphones(True)
    out = run(processor, echo, voice)
    converged = slice(8 * SAMPLE_RATE, 12 * SAMPLE_RATE)
    assert 10 * np.log10(power(echo[converged]) / power(out[converged])) < 3


def test_a_quiet_talker_comes_out_at_a_normal_level(voice: np.ndarray) -> None:
    quiet = voice / np.sqrt(power(voice)) * 32768 * 10 ** (-35 / 20)  # -35 dBFS
    out = run(VoiceProcessor(), quiet, np.zeros_like(quiet))
    level = 10 * np.log10(power(out[-3 * SAMPLE_RATE :]) / 32768**2)
    assert -25 <= level <= -15, f"{level:.1f} dBFS"


async def test_the_source_is_cleaned_and_the_sink_gives_the_reference(
    tmp_path: Path, voice: np.ndarray
) -> None:
    """The devices' wrapping: frames keep their length and timing, the processor sees both
    sides."""
    frames = voice[:SAMPLE_RATE].astype(np.int16)
    source, sink, processor = with_voice_processing(
        ClipSource(frames, loop=False), _Collect(), ProcessingSettings()
    )
    got = [frame async for frame in source.frames()]
    for frame in got:
        sink.write(frame)
    assert processor.frames == len(got) == SAMPLE_RATE // FRAME_SAMPLES
    assert all(len(frame) == FRAME_SAMPLES for frame in got)
    assert len(sink.inner.frames) == len(got)  # type: ignore[attr-defined]


class _Collect:
    label = "collect"

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> None:
        pass


def test_fan_noise_under_a_talker_is_turned_down(voice: np.ndarray) -> None:
    """Speech with pauses under fan noise at 5 dB SNR: the noise suppressor raises the SNR
    (speech frames against pause frames).  Measured +4.8 dB with automatic gain, which lifts
    the pauses too (+7.9 dB without): short of the +10 dB aimed at (issue 21, still open)."""
    rate = SAMPLE_RATE
    talk = np.concatenate([np.zeros(2 * rate), voice[: 5 * rate], np.zeros(rate)])
    rng = np.random.default_rng(5)
    fan = np.cumsum(rng.standard_normal(len(talk)))
    fan -= np.convolve(fan, np.ones(480) / 480, mode="same")  # brown noise, no drift
    frames = len(talk) // FRAME_SAMPLES
    energy = np.array(
        [power(talk[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(frames)]
    )
    talking = energy > 0.05 * energy.max()
    fan *= np.sqrt(np.mean(energy[talking]) / 10 ** (5 / 10)) / fan.std()

    def snr_db(x: np.ndarray) -> float:
        e = np.array([power(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(frames)])
        speech_power, noise_power = np.mean(e[talking]), np.mean(e[~talking][10:])
        return float(10 * np.log10(max(speech_power - noise_power, 1e-9) / noise_power))

    noisy = talk + fan
    out = run(VoiceProcessor(ProcessingSettings(headphones=True)), noisy, np.zeros_like(noisy))
    gained = snr_db(out) - snr_db(noisy[: len(out)])
    assert gained >= 4, f"SNR {gained:+.1f} dB"


def later(x: np.ndarray, seconds: float) -> np.ndarray:
    shift = int(seconds * SAMPLE_RATE)
    return np.concatenate([np.zeros(shift), x[: len(x) - shift]])


@pytest.mark.parametrize(
    ("room", "noticed"),
    [
        ("one laptop", False),
        ("a second laptop 60 ms behind", True),
        ("a second laptop 120 ms behind", True),
        ("someone talking over one laptop", False),
    ],
)
def test_another_laptops_speakers_near_the_microphone_are_noticed(
    voice: np.ndarray, tmp_path: Path, room: str, noticed: bool
) -> None:
    """The room's voice, played by this laptop and by a second one beside it that plays it a
    little later (beyond the canceller's reach): what the microphone sends still resembles
    what was played, and the person is to be told.  One laptop alone, or one with its owner
    talking over it, must never be taken for two."""
    mic = room_echo(voice)
    if room.startswith("a second laptop"):
        mic += 0.3 * room_echo(later(voice, int(room.split()[3]) / 1000), level=1.0)
    elif room.startswith("someone"):
        near = load_audio(speech(tmp_path / "near.wav", other=True)).astype(np.float64)
        mic += 0.5 * np.tile(near, 1 + len(mic) // len(near))[: len(mic)]
    processor = VoiceProcessor()
    run(processor, mic, voice)
    scores = [round(s, 2) for s in processor.nearby.scores]
    assert processor.nearby.heard is noticed, f"{room}: {scores}"
