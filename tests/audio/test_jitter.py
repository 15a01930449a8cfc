"""The jitter buffer, driven by a plain-number clock with real Opus packets."""

from __future__ import annotations

import math

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.analysis import align
from p2pspaces.audio.jitter import IDLE_FRAMES, JitterBuffer
from p2pspaces.audio.opus import Encoder

from .signals import chirp, frames_of

SEQ0 = 65_530  # close to the 16-bit wrap, which must not matter
TS0 = 4_000_000_000


def _packets(seconds: float = 1.0) -> tuple[np.ndarray, list[bytes]]:
    source = chirp(seconds)
    encoder = Encoder()
    return source, [encoder.encode(frame) for frame in frames_of(source)]


def _run(
    packets: list[bytes], arrival: dict[int, float], ticks: int, phase: float = 10.0
) -> tuple[JitterBuffer, list[np.ndarray | None]]:
    """Deliver packet i at arrival[i] ms; pull every 20 ms from ``phase``."""
    buffer = JitterBuffer()
    events = sorted((t, i) for i, t in arrival.items())
    out: list[np.ndarray | None] = []
    for tick in range(ticks):
        now = phase + tick * 20.0
        while events and events[0][0] <= now:
            _, i = events.pop(0)
            buffer.push(
                (SEQ0 + i) % 65536, (TS0 + i * FRAME_SAMPLES) % 2**32, packets[i], arrival[i]
            )
        out.append(buffer.pull(now))
    return buffer, out


def _played(out: list[np.ndarray | None]) -> np.ndarray:
    return np.concatenate([frame for frame in out if frame is not None])


def test_in_order_packets_play_one_per_tick_and_match_the_source() -> None:
    source, packets = _packets()
    buffer, out = _run(packets, {i: i * 20.0 for i in range(len(packets))}, len(packets))
    assert buffer.stats.played == len(packets)
    assert buffer.stats.concealed + buffer.stats.recovered + buffer.stats.late == 0
    assert align(_played(out), source).correlation > 0.9


# With ticks 25 ms after each packet's arrival, the next packet is always already here.
AHEAD = 25.0


def test_a_lost_packet_is_rebuilt_from_the_next_ones_fec_without_waiting() -> None:
    source, packets = _packets()
    arrival = {i: i * 20.0 for i in range(len(packets)) if i != 20}
    buffer, out = _run(packets, arrival, len(packets), phase=AHEAD)
    assert buffer.stats.recovered == 1
    assert buffer.stats.played == len(packets) - 1
    assert len(_played(out)) == len(packets) * FRAME_SAMPLES  # no frame missing, none added
    assert align(_played(out), source).correlation > 0.85


def test_two_lost_packets_in_a_row_are_concealed_then_rebuilt() -> None:
    _source, packets = _packets()
    arrival = {i: i * 20.0 for i in range(len(packets)) if i not in (20, 21)}
    buffer, out = _run(packets, arrival, len(packets), phase=AHEAD)
    assert (buffer.stats.concealed, buffer.stats.recovered) == (1, 1)
    assert len(_played(out)) == len(packets) * FRAME_SAMPLES


def test_reordered_packets_are_played_in_order() -> None:
    source, packets = _packets()
    arrival = {i: i * 20.0 for i in range(len(packets))}
    arrival[10], arrival[11] = 205.0, 204.0  # 11 overtakes 10 before 10's tick (210 ms)
    buffer, out = _run(packets, arrival, len(packets))
    assert buffer.stats.played == len(packets)
    assert align(_played(out), source).correlation > 0.9


def test_a_burst_after_a_stall_is_skipped_so_delay_does_not_creep() -> None:
    _, packets = _packets(2.0)
    arrival = {i: i * 20.0 for i in range(len(packets))}
    for i in range(30, 45):  # the network stalls 300 ms, then delivers everything at once
        arrival[i] = 44 * 20.0
    buffer, _ = _run(packets, arrival, len(packets))  # until just after the last arrival
    assert buffer.stats.skipped > 0
    played_by_then = buffer.stats.played
    for tick in range(len(packets), len(packets) + 10):
        buffer.pull(10.0 + tick * 20.0)
    # What was still queued when the last packet arrived is at most the target plus two frames,
    # and the target, which the stall raised, stays under its cap: no unbounded delay.
    assert buffer.target_ms <= 200
    assert buffer.stats.played - played_by_then <= math.ceil(buffer.target_ms / 20) + 2


def test_late_packets_are_dropped_and_the_delay_grows_once() -> None:
    _, packets = _packets(2.0)
    arrival = {i: i * 20.0 for i in range(len(packets))}
    for i in range(30, len(packets)):  # from packet 30 on, everything is 15 ms later
        arrival[i] += 15.0
    buffer, _out = _run(packets, arrival, len(packets) + 1, phase=12.0)
    # Two late packets in a row: the first is a hiccup, the second grows the delay by a frame,
    # after which every packet is in time again.
    assert buffer.stats.late == 2
    assert buffer.stats.played == len(packets) - 2


def test_a_single_late_packet_does_not_shift_the_timeline() -> None:
    source, packets = _packets(2.0)
    arrival = {i: i * 20.0 for i in range(len(packets))}
    arrival[40] += 15.0  # one hiccup
    buffer, out = _run(packets, arrival, len(packets), phase=12.0)
    assert buffer.stats.late == 1
    assert len(_played(out)) == len(packets) * FRAME_SAMPLES  # no frame inserted
    assert (
        align(_played(out), source).lag
        == align(
            _played(
                _run(packets, {i: i * 20.0 for i in range(len(packets))}, len(packets), phase=12.0)[
                    1
                ]
            ),
            source,
        ).lag
    )


def test_the_stream_goes_idle_when_the_speaker_stops() -> None:
    _, packets = _packets(0.5)
    buffer, out = _run(packets, {i: i * 20.0 for i in range(len(packets))}, 40)
    silent_after = [frame is None for frame in out[len(packets) + IDLE_FRAMES + 1 :]]
    assert all(silent_after)
    assert not buffer.active


def test_jitter_estimate_follows_interarrival_variation() -> None:
    _, packets = _packets(2.0)
    rng = np.random.default_rng(3)
    steady, _ = _run(packets, {i: i * 20.0 for i in range(len(packets))}, 110)
    shaky, _ = _run(packets, {i: i * 20.0 + rng.uniform(0, 15) for i in range(len(packets))}, 110)
    assert steady.jitter_ms < 0.5
    assert 2.0 < shaky.jitter_ms < 10.0
    assert shaky.target_ms > steady.target_ms


def test_an_offset_decided_at_the_start_is_taken_back() -> None:
    # The first packets arrive in a burst (a stall at start-up); the talkspurt's timeline is set
    # by it, so every later packet, arriving on time, waits 65 ms where 4 would do.  Within a
    # few seconds the buffer skips the whole frames of excess and says how much of a frame is
    # left for the playout clock to take back; nothing else is lost.
    _, packets = _packets(6.0)
    arrival = {i: max(45.0, i * 20.0) for i in range(len(packets))}
    buffer, out = _run(packets, arrival, len(packets), phase=45.0)
    # Each packet waited 65 ms against a 4 ms target: three frames skipped, 1 ms left over.
    assert buffer.stats.skipped == 3
    assert buffer.excess_ms < 2.0
    assert buffer.stats.late == 0
    assert buffer.stats.concealed <= IDLE_FRAMES  # only as the stream runs dry at the end
    assert buffer.stats.played == len(packets) - buffer.stats.skipped  # nothing else lost
    assert len(out) == len(packets)


def test_no_excess_is_claimed_before_a_second_of_frames() -> None:
    _, packets = _packets(0.5)
    buffer, _ = _run(packets, {i: i * 20.0 for i in range(len(packets))}, len(packets), 30.0)
    assert buffer.excess_ms == 0.0  # 25 frames: too few to judge
