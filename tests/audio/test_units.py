"""Mixer, level meter, file conversion, Opus, and encode-once fan-out."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import SourceError, load_audio, open_input, open_output
from p2pspaces.audio.fanout import Broadcaster, PacketTrack
from p2pspaces.audio.level import LevelMeter, rms_dbfs
from p2pspaces.audio.mixer import mix
from p2pspaces.audio.opus import Decoder, Encoder
from p2pspaces.net import ice
from p2pspaces.net.receive import take_rtp

from .signals import chirp, dominant_hz, frames_of, tone, write_wav


def _frame(value: int) -> np.ndarray:
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


# --- mixer ---------------------------------------------------------------------------------


def test_mix_sums_streams_with_their_gains() -> None:
    out = mix([(_frame(1000), 1.0), (_frame(3000), 0.5)])
    assert out.dtype == np.int16 and len(out) == FRAME_SAMPLES
    assert np.all(out == 2500)


def test_mix_clips_instead_of_wrapping_around() -> None:
    loud = mix([(_frame(30000), 1.0), (_frame(30000), 1.0)])
    assert np.all(loud == 32767)
    low = mix([(_frame(-30000), 1.0), (_frame(-30000), 1.0)])
    assert np.all(low == -32768)


def test_mix_of_nothing_or_a_short_stream_is_padded_with_silence() -> None:
    assert np.all(mix([]) == 0)
    short = np.full(100, 500, dtype=np.int16)
    out = mix([(short, 1.0)])
    assert np.all(out[:100] == 500) and np.all(out[100:] == 0)


def test_mix_refuses_a_negative_gain() -> None:
    with pytest.raises(ValueError, match="gain cannot be negative"):
        mix([(_frame(1), -1.0)])


# --- level meter ---------------------------------------------------------------------------


def test_rms_dbfs_of_known_levels() -> None:
    assert rms_dbfs(_frame(0)) == -96.0
    assert rms_dbfs(_frame(32767)) == pytest.approx(0.0, abs=0.01)
    sine = (tone(1000, 0.02, level=1.0) * 32767 * 0.5).astype(np.int16)
    assert rms_dbfs(sine) == pytest.approx(-9.03, abs=0.1)  # -6 dB amplitude, -3 dB for RMS


def test_level_meter_thresholds_and_hysteresis() -> None:
    meter = LevelMeter(on_db=-40, off_db=-50, hold_ms=300, min_interval_ms=100)
    loud, mid, quiet = _frame(1000), _frame(150), _frame(0)  # about -30, -47, -96 dBFS
    assert meter.feed(quiet, 0) is None
    assert meter.feed(mid, 20) is None  # between the thresholds: not enough to start
    assert meter.feed(loud, 40) is True
    # Between the thresholds it keeps speaking (hysteresis), however long.
    assert all(meter.feed(mid, t) is None for t in range(60, 2000, 20))
    assert meter.speaking
    # Below the off threshold, it goes quiet only after the hold time.
    assert meter.feed(quiet, 2000) is None
    assert meter.feed(quiet, 2200) is None
    assert meter.feed(quiet, 2300) is False


def test_level_meter_reports_at_most_ten_times_a_second() -> None:
    meter = LevelMeter(on_db=-40, off_db=-50, hold_ms=0, min_interval_ms=100)
    changes = []
    for step in range(200):  # 4 s of alternating loud and silent frames
        frame = _frame(1000) if step % 2 == 0 else _frame(0)
        change = meter.feed(frame, step * 20)
        if change is not None:
            changes.append(step * 20)
    gaps = np.diff(changes)
    assert len(changes) > 10 and gaps.min() >= 100


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_a_wav_of_any_rate_becomes_48k(tmp_path: Path, rate: int) -> None:
    path = write_wav(tmp_path / "in.wav", tone(1000, 1.0, rate), rate)
    samples = load_audio(path)
    assert abs(len(samples) - SAMPLE_RATE) <= 64
    assert dominant_hz(samples) == pytest.approx(1000, abs=2)


def test_stereo_becomes_the_mean_of_its_channels(tmp_path: Path) -> None:
    left = tone(440, 1.0, level=0.6)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    samples = load_audio(write_wav(tmp_path / "st.wav", stereo, channels=2))
    peak = np.abs(samples[1000:-1000]).max() / 32767
    assert peak == pytest.approx(0.3, abs=0.01)
    assert dominant_hz(samples) == pytest.approx(440, abs=2)


def test_a_missing_or_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    with pytest.raises(SourceError, match="cannot read"):
        load_audio(bad)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tone:abc", "tone:HZ wants a frequency"),
        ("tone:5", "between 20 Hz and 24 kHz"),
        ("file:x.wav?shuffle", "unknown file option"),
        ("radio", "unknown input 'radio'"),
    ],
)
def test_bad_inputs_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_input(spec)


def test_bad_outputs_are_refused_with_a_reason() -> None:
    with pytest.raises(SourceError, match="unknown output 'headphones'"):
        open_output("headphones")


# --- opus and fan-out ----------------------------------------------------------------------


def test_opus_round_trip_keeps_the_waveform() -> None:
    encoder, decoder = Encoder(), Decoder()
    source = chirp(2.0)
    decoded = np.concatenate([decoder.decode(encoder.encode(f)) for f in frames_of(source)])
    alignment = align(decoded, source)
    assert 0 < alignment.lag < 960  # Opus's own delay, under one frame
    assert alignment.correlation > 0.9


async def _audio_pair(broadcaster: Broadcaster, heard: list[Any]) -> list[RTCPeerConnection]:
    """A real connection on loopback whose offerer's audio sender the broadcaster feeds; the
    answerer files every RTP packet it receives in ``heard``."""
    ice.use_addresses(("127.0.0.1",))
    sending = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiving = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = sending.addTransceiver("audio", direction="sendrecv")
    broadcaster.attach(bytes([len(broadcaster.outlets)]) * 32, transceiver.sender)
    await sending.setLocalDescription(await sending.createOffer())
    await receiving.setRemoteDescription(sending.localDescription)

    async def file(packet: Any, arrival_time_ms: int = 0) -> None:
        heard.append(packet)

    take_rtp(receiving.getTransceivers()[0].receiver, file)  # the hook the mesh uses
    await receiving.setLocalDescription(await receiving.createAnswer())
    await sending.setRemoteDescription(receiving.localDescription)
    await _until(lambda: all(o.ready for o in broadcaster.outlets.values()), 20)
    return [sending, receiving]


async def _until(done: Callable[[], bool], within: float) -> None:
    async with asyncio.timeout(within):
        while not done():  # noqa: ASYNC110 - polling what aiortc offers no event for
            await asyncio.sleep(0.02)


async def test_one_encode_per_frame_reaches_every_connection_as_rtp() -> None:
    broadcaster = Broadcaster()
    heard: list[list[Any]] = [[], [], []]
    pcs = [pc for ears in heard for pc in await _audio_pair(broadcaster, ears)]
    try:
        frames = frames_of(chirp(0.2))
        for index, frame in enumerate(frames[:5]):
            await broadcaster.send(frame, index * FRAME_SAMPLES)
        # A pause (not speaking), then a new talkspurt.
        for index, frame in enumerate(frames[5:], start=8):
            await broadcaster.send(frame, index * FRAME_SAMPLES)
        await _until(lambda: all(len(ears) == len(frames) for ears in heard), 5)
    finally:
        for pc in pcs:
            await pc.close()
    assert broadcaster.frames_encoded == len(frames)
    payloads = [bytes(p.payload) for p in heard[0]]
    decoder = Decoder()
    assert rms_dbfs(np.concatenate([decoder.decode(p) for p in payloads])) > -30
    for ears in heard:
        assert [bytes(p.payload) for p in ears] == payloads  # the same bytes to everyone
        seqs = [p.sequence_number for p in ears]
        assert [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)] == [1] * 9
        steps = [(b.timestamp - a.timestamp) & 0xFFFFFFFF for a, b in itertools.pairwise(ears)]
        assert steps == [FRAME_SAMPLES] * 4 + [4 * FRAME_SAMPLES] + [FRAME_SAMPLES] * 4
        assert [p.marker for p in ears] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert len({ears[0].ssrc for ears in heard}) == 3  # each connection its own stream


def test_a_lagging_peer_loses_its_oldest_packets_not_the_others_time() -> None:
    track = PacketTrack()
    encoder = Encoder()
    for index, frame in enumerate(frames_of(chirp(0.3))):
        track.offer(encoder.encode(frame), index * FRAME_SAMPLES)
    assert track.dropped == 15 - 5
    assert track._queue.get_nowait().pts == 10 * FRAME_SAMPLES
