"""A small ctypes binding to libopus: one encoder per speaker, one decoder per stream.

We call libopus directly rather than through PyAV/FFmpeg because the receive path needs what
FFmpeg's decoder does not expose: packet-loss concealment (``opus_decode`` with no data) and
in-band FEC (``decode_fec=1`` on the packet after a loss), RFC 6716 section 4.4 / RFC 7587.
The library is Debian's ``libopus0`` when installed, else the copy bundled with PyAV's wheel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os

import numpy as np
import numpy.typing as npt

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE

OPUS_APPLICATION_VOIP = 2048
OPUS_SET_BITRATE = 4002
OPUS_SET_COMPLEXITY = 4010
OPUS_SET_INBAND_FEC = 4012
OPUS_SET_PACKET_LOSS_PERC = 4014
OPUS_SET_SIGNAL = 4024
OPUS_SIGNAL_VOICE = 3001
MAX_PACKET = 1500
DEFAULT_BITRATE = 40_000

Pcm = npt.NDArray[np.int16]


class OpusError(Exception):
    """libopus is missing or refused a call."""


def _find_library() -> str:
    system = ctypes.util.find_library("opus")
    if system:
        return system
    import av  # noqa: PLC0415 - only to locate the copy its wheel bundles

    bundled = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs", "libopus*")
    candidates = sorted(glob.glob(bundled))
    if not candidates:
        raise OpusError("libopus not found: install Debian's libopus0 (or PyAV's wheel)")
    return candidates[0]


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(_find_library())
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int32,
    ]
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


_LIB: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """The loaded libopus (loaded on first use)."""
    global _LIB  # noqa: PLW0603 - one process-wide handle to a C library
    if _LIB is None:
        _LIB = _load()
    return _LIB


def _check(code: int, what: str) -> int:
    if code < 0:
        raise OpusError(f"{what} failed with libopus error {code}")
    return code


class Encoder:
    """Opus for voice: 48 kHz mono, 20 ms frames, in-band FEC on."""

    def __init__(self, bitrate: int = DEFAULT_BITRATE, expected_loss_percent: int = 10) -> None:
        lib = library()
        error = ctypes.c_int()
        self._state = lib.opus_encoder_create(
            SAMPLE_RATE, 1, OPUS_APPLICATION_VOIP, ctypes.byref(error)
        )
        _check(error.value, "opus_encoder_create")
        for request, value in (
            (OPUS_SET_BITRATE, bitrate),
            (OPUS_SET_INBAND_FEC, 1),
            (OPUS_SET_PACKET_LOSS_PERC, expected_loss_percent),
            (OPUS_SET_SIGNAL, OPUS_SIGNAL_VOICE),
            (OPUS_SET_COMPLEXITY, 5),
        ):
            _check(
                lib.opus_encoder_ctl(ctypes.c_void_p(self._state), request, ctypes.c_int32(value)),
                "opus_encoder_ctl",
            )
        self._out = ctypes.create_string_buffer(MAX_PACKET)
        self.encoded = 0

    def encode(self, pcm: Pcm) -> bytes:
        """Encode one 20 ms frame of int16 mono samples."""
        if pcm.dtype != np.int16 or pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"expected {FRAME_SAMPLES} int16 samples")
        data = np.ascontiguousarray(pcm)
        size = _check(
            library().opus_encode(
                self._state, data.ctypes.data, FRAME_SAMPLES, self._out, MAX_PACKET
            ),
            "opus_encode",
        )
        self.encoded += 1
        return self._out.raw[:size]

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            library().opus_encoder_destroy(self._state)


class Decoder:
    """One remote stream's decoder, with loss concealment and FEC recovery."""

    def __init__(self) -> None:
        error = ctypes.c_int()
        self._state = library().opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        _check(error.value, "opus_decoder_create")
        self._pcm = np.zeros(FRAME_SAMPLES * 6, dtype=np.int16)  # up to 120 ms per packet

    def _decode(self, data: bytes | None, fec: int) -> Pcm:
        count = library().opus_decode(
            self._state, data, len(data) if data else 0, self._pcm.ctypes.data, FRAME_SAMPLES, fec
        )
        if count < 0:
            raise OpusError(f"opus_decode failed with libopus error {count}")
        out: Pcm = self._pcm[:count].copy()
        return out

    def decode(self, data: bytes) -> Pcm:
        """Decode one packet."""
        return self._decode(data, 0)

    def conceal(self) -> Pcm:
        """Packet-loss concealment for one missing 20 ms frame."""
        return self._decode(None, 0)

    def recover(self, next_packet: bytes) -> Pcm:
        """Rebuild the missing frame from the FEC data carried by the packet after it."""
        return self._decode(next_packet, 1)

    def __del__(self) -> None:
        if getattr(self, "_state", None):
            library().opus_decoder_destroy(self._state)
