"""A clock-driven jitter buffer for one remote speaker: adaptive, concealing, never creeping.

aiortc's own receive path holds 16 packets, releases a frame only once 4 newer ones arrived (an
80 ms floor) and has no loss handling, so one lost packet adds about 200 ms for the rest of a call
(aiortc issue #543).  This buffer is driven by the playout clock instead:

* :meth:`push` files each packet by its (unwrapped) RTP sequence number and updates the
  interarrival jitter estimate of RFC 3550 section 6.4.1 (appendix A.8).
* :meth:`pull`, once per 20 ms tick, returns the next frame: decoded if its packet is here;
  rebuilt from the next packet's in-band FEC, or concealed by Opus PLC, if it is missing while
  newer packets are here (a loss: we never wait for it); concealed if nothing newer is here
  either (a late packet, or the speaker stopped), keeping time so that the packet is dropped
  as late if it turns up; and nothing once the stream has been dry for :data:`IDLE_FRAMES`.
  Only once packets have arrived late twice within :data:`LATE_WINDOW_MS` does the next such
  gap grow the delay by one frame instead (conceal without advancing): the delay adapts to
  real lateness, not to a single hiccup.
* The target delay is the 95th percentile of recent arrival spread plus a margin (at least
  ``min_delay_ms``, at most ``max_delay_ms``); the RFC 3550 jitter is kept for reporting.  A
  talkspurt starts playing that long after its first packet, and whenever more than two
  frames above the target are queued, the oldest are skipped, so delay cannot creep.
* The delay does not stay above the target either: each played packet's wait (from arrival to
  its tick) is kept for :data:`WAIT_WINDOW` frames, and :attr:`excess_ms`, the shortest wait
  less the target, says how much sooner every packet of the window could have played.  A whole
  frame of excess is skipped here; less than a frame is the playout clock's to take back
  (the engine ticks that much sooner).  So an offset decided once (a start-up burst, the
  tick's phase at the first packet, a scheduling stall) is taken back within a second or two,
  instead of staying for the whole call.

Time comes in as ``now_ms``; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from p2pspaces.audio import FRAME_MS, SAMPLE_RATE
from p2pspaces.audio.opus import Decoder, Pcm

IDLE_FRAMES = 3
LATE_WINDOW_MS = 2000.0
HISTORY = 250
"""Packets (5 s) over which the arrival spread is measured."""
MARGIN_MS = 3.0
MAX_QUEUED = 100
WAIT_WINDOW = 50
"""Played frames (1 s) over which the shortest wait is measured."""
_SEQ_MOD = 1 << 16


@dataclass(slots=True)
class JitterStats:
    """What happened to a stream's packets."""

    received: int = 0
    played: int = 0
    recovered: int = 0
    concealed: int = 0
    late: int = 0
    skipped: int = 0


class JitterBuffer:
    """Packets in, one frame per tick out."""

    def __init__(
        self,
        decoder: Callable[[], Decoder] = Decoder,
        min_delay_ms: float = 4.0,
        max_delay_ms: float = 200.0,
    ) -> None:
        self._decoder = decoder()
        self._min_delay = min_delay_ms
        self._max_delay = max_delay_ms
        self._packets: dict[int, tuple[bytes, float]] = {}
        """Packets by sequence number, with their arrival time (ms)."""
        self._waits: deque[float] = deque(maxlen=WAIT_WINDOW)
        self._next: int | None = None
        self._highest = -1
        self._ready_at = 0.0
        self._ext: int | None = None
        self._last_transit: float | None = None
        self._dry = 0
        self._stretch = False
        self._last_late = -float("inf")
        self.jitter_ms = 0.0
        self.stats = JitterStats()
        self._transits: deque[float] = deque(maxlen=HISTORY)
        self._spread = 0.0

    @property
    def target_ms(self) -> float:
        """The delay this buffer aims for now: the 95th percentile of how late recent packets
        were against the earliest one (as NetEq does, rather than a mean that hides spikes),
        plus a small margin for our own scheduling."""
        return min(self._max_delay, max(self._min_delay, self._spread + MARGIN_MS))

    @property
    def excess_ms(self) -> float:
        """How much longer than the target every packet of the last second waited (0 until a
        second of frames has played since the last correction)."""
        if len(self._waits) < WAIT_WINDOW:
            return 0.0
        return max(0.0, min(self._waits) - self.target_ms)

    def restart_waits(self) -> None:
        """The playout clock now ticks sooner: measure the waits afresh."""
        self._waits.clear()

    @property
    def active(self) -> bool:
        """Whether a talkspurt is playing."""
        return self._next is not None

    @property
    def ready_at(self) -> float:
        """When (ms) the current talkspurt may start playing."""
        return self._ready_at

    def push(self, sequence: int, timestamp: int, payload: bytes, now_ms: float) -> bool:
        """File one RTP packet (16-bit sequence number, 48 kHz timestamp); True if it starts a
        new talkspurt."""
        seq = self._unwrap(sequence)
        self.stats.received += 1
        self._update_jitter(timestamp, now_ms)
        started = self._next is None
        if started:
            self._packets.clear()
            self._next = seq
            self._highest = seq
            self._ready_at = now_ms + self.target_ms
            self._waits.clear()
        elif self._next is not None and seq < self._next:
            self.stats.late += 1
            # One late packet is a hiccup (treated as lost); a second within LATE_WINDOW_MS
            # means the delay really went up, so the next gap grows the buffer by a frame.
            self._stretch = now_ms - self._last_late < LATE_WINDOW_MS
            self._last_late = now_ms
            return False
        self._packets[seq] = (payload, now_ms)
        self._highest = max(self._highest, seq)
        while len(self._packets) > MAX_QUEUED:
            del self._packets[min(self._packets)]
        return started

    def pull(self, now_ms: float) -> Pcm | None:
        """The frame to play at this tick, or None if the stream is silent."""
        if self._next is None or now_ms < self._ready_at:
            return None
        self._catch_up()
        entry = self._packets.pop(self._next, None)
        if entry is not None:
            payload, arrived = entry
            self._waits.append(now_ms - arrived)
            self._advance()
            self.stats.played += 1
            return self._decoder.decode(payload)
        if self._highest > self._next:
            following = self._packets.get(self._next + 1)
            self._advance()
            if following is not None:
                self.stats.recovered += 1
                return self._decoder.recover(following[0])
            self.stats.concealed += 1
            return self._decoder.conceal()
        self._dry += 1
        if self._dry > IDLE_FRAMES:
            self._next = None
            self._packets.clear()
            return None
        self.stats.concealed += 1
        if self._stretch:
            self._stretch = False  # packets have been arriving late: grow the delay a frame
        else:
            self._next += 1  # keep time; if this packet turns up after all, it is late
        return self._decoder.conceal()

    def _advance(self) -> None:
        if self._next is not None:
            self._next += 1
        self._dry = 0

    def _catch_up(self) -> None:
        if self._next is None:
            return
        if self.excess_ms >= FRAME_MS and self._next in self._packets:
            # Every packet of the last second waited a whole frame longer than needed: skip
            # one (a 20 ms cut, once) rather than keep the listener that much behind.
            del self._packets[self._next]
            self._next += 1
            self.stats.skipped += 1
            self._waits.clear()
        allowed = math.ceil(self.target_ms / FRAME_MS) + 2
        queued = self._highest - self._next + 1
        if queued > allowed:
            skip_to = self._highest - allowed + 1
            for seq in range(self._next, skip_to):
                self._packets.pop(seq, None)
            self.stats.skipped += skip_to - self._next
            self._next = skip_to

    def _unwrap(self, sequence: int) -> int:
        if self._ext is None:
            self._ext = sequence
            return sequence
        delta = (sequence - self._ext) % _SEQ_MOD
        if delta >= _SEQ_MOD // 2:
            delta -= _SEQ_MOD
        self._ext += delta
        return self._ext

    def _update_jitter(self, timestamp: int, now_ms: float) -> None:
        transit = now_ms - timestamp * 1000 / SAMPLE_RATE
        self._transits.append(transit)
        if len(self._transits) % 10 == 1:
            recent = np.fromiter(self._transits, dtype=np.float64)
            spread = float(np.percentile(recent, 95) - recent.min())
            self._spread = spread if spread < 1000 else 0.0  # a timestamp wrap: start afresh
            if spread >= 1000:
                self._transits.clear()
        if self._last_transit is not None:
            step = abs(transit - self._last_transit)
            if step < 1000:  # a new talkspurt's timestamp jump is not jitter
                self.jitter_ms += (step - self.jitter_ms) / 16
        self._last_transit = transit
