"""A guest's own volumes: someone set to 0% is not heard by that guest, and nobody else's mix
changes."""

from __future__ import annotations

from typing import Any

import numpy as np

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.opus import Decoder
from p2pspaces.web.mixer import VOLUMES_MAX, GuestMixer

LOUD, OTHER, GUEST, QUIET_ONE = b"l" * 32, b"o" * 32, b"g" * 32, b"q" * 32


class Track:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def offer(self, payload: bytes, pts: int) -> None:
        self.packets.append(payload)


def _tone(hz: float) -> Any:
    t = np.arange(FRAME_SAMPLES) / 48_000
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _heard(track: Track) -> np.ndarray:
    decoder = Decoder()
    return np.concatenate([decoder.decode(p) for p in track.packets[-10:]]).astype(float)


def test_a_guest_who_turns_someone_down_stops_hearing_them_and_only_that_guest() -> None:
    mixer = GuestMixer(b"n" * 32)
    mine, theirs = Track(), Track()
    assert mixer.set_volume(GUEST, LOUD, 0.0) == 0.0
    for _ in range(25):
        mixer.feed(
            [(LOUD, _tone(440)), (OTHER, _tone(1000))], None, {GUEST: mine, QUIET_ONE: theirs}
        )  # type: ignore[dict-item]
    spectrum_mine = np.abs(np.fft.rfft(_heard(mine)))
    spectrum_theirs = np.abs(np.fft.rfft(_heard(theirs)))
    bin_440, bin_1000 = (round(hz * len(_heard(mine)) / 48_000) for hz in (440, 1000))
    assert spectrum_mine[bin_440] < 0.05 * spectrum_mine[bin_1000]  # LOUD is gone for GUEST
    assert spectrum_theirs[bin_440] > 20 * spectrum_mine[bin_440]  # not for anyone else
    assert mixer.set_volume(GUEST, LOUD, 9.0) == 2.0  # capped
    assert mixer.set_volume(GUEST, LOUD, 1.0) == 1.0  # back to as spoken


def test_a_guests_volumes_are_capped() -> None:
    mixer = GuestMixer()
    kept = [mixer.set_volume(GUEST, bytes([i]) * 32, 0.5) for i in range(VOLUMES_MAX + 5)]
    assert kept.count(0.5) == VOLUMES_MAX and kept[-1] == 1.0
