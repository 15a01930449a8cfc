"""The audio engine of one node: capture and send, receive and play, and the level meters.

* Capture: the source yields a frame every 20 ms; frame ``i`` has pts ``i * 960`` whether or not
  it is sent, so RTP timestamps track real time across pauses.  The frame is sent (encoded once,
  see :mod:`p2pspaces.audio.fanout`) only while ``may_send`` says this node is an unmuted
  speaker in the signed state; self-mute stops sending at the next frame.
* Receive: RTP packets from each peer go to that peer's jitter buffer, but only while
  ``allowed(peer)`` holds: every node enforces the signed state itself, whatever a peer sends.
  In a large room, packets that come through a relay are checked, filed under their voice and
  passed on to the listeners we relay to (:mod:`p2pspaces.audio.relay`); while we hear
  through a relay, nothing straight from a voice is played.
* Play: a 20 ms tick pulls one frame per stream, feeds the level meters, mixes with per-member
  gain and hands the mix to the sink (silence included, so a recording keeps real time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from aiortc import RTCRtpSender

from p2pspaces.audio import FRAME_MS, FRAME_SAMPLES
from p2pspaces.audio.devices import FRAME_S, Sink, Source
from p2pspaces.audio.fanout import Broadcaster
from p2pspaces.audio.jitter import JitterBuffer
from p2pspaces.audio.level import LevelMeter, rms_dbfs
from p2pspaces.audio.mixer import mix, silence
from p2pspaces.audio.opus import Pcm
from p2pspaces.audio.relay import RelayPath

log = logging.getLogger(__name__)

PHASE_SLACK_MS = 1.0
"""Excess wait below this is left alone (not worth moving the playout clock for)."""

LevelCallback = Callable[[bytes, bool, float], None]


@dataclass
class FrameLog:
    """Per-frame times for latency measurement, in seconds on the node's clock: ``sent`` maps the
    pts of each frame sent to when the pipeline took it; ``ticks[i]`` is when the sink took
    frame ``i`` of the mix (see :func:`p2pspaces.audio.analysis.frame_delays`)."""

    sent: dict[int, float] = field(default_factory=dict)
    ticks: list[float] = field(default_factory=list)


class AudioEngine:
    """Sources, sinks, the broadcaster, jitter buffers, meters and the mixer of one node."""

    def __init__(
        self,
        me: bytes,
        source: Source,
        sink: Sink,
        clock: Callable[[], float],
        on_level: LevelCallback,
        *,
        fault_drop: float = 0.0,
    ) -> None:
        self.me = me
        self.source = source
        self.sink = sink
        self._clock = clock
        self._on_level = on_level
        self.broadcaster = Broadcaster()
        self.streams: dict[bytes, JitterBuffer] = {}
        self.meters: dict[bytes, LevelMeter] = {}
        self.gains: dict[bytes, float] = {}
        self.may_send: Callable[[], bool] = lambda: False
        self.allowed: Callable[[bytes], bool] = lambda peer: False
        self.refused_packets = 0
        self.relay: RelayPath | None = None
        """Relayed voices (set by the node: it knows the room's plan)."""
        self.heard_at: dict[bytes, float] = {}
        """When a packet of each stream last came in (our clock)."""
        self.frame_log: FrameLog | None = None
        self._fault_drop = fault_drop
        self._rng = np.random.default_rng()
        self._tasks: list[asyncio.Task[None]] = []
        self.recorder: Sink | None = None
        """Where the whole room's audio goes while the host records: the mix plus own voice."""
        self._own: Pcm | None = None
        self.mic_level_db = -100.0
        """The input's level now, sent or not (a microphone check before speaking)."""
        self._wake = asyncio.Event()
        self._rephase_at: float | None = None
        self.tap: Callable[[list[tuple[bytes, Pcm]], Pcm | None], None] | None = None
        """Called every tick with each stream's frame (before gain) and our own voice (if
        sent): a web gateway mixes its browser guests' audio from these."""
        self._frames: list[tuple[bytes, Pcm]] = []
        self._check: tuple[list[Pcm], int, asyncio.Future[list[Pcm]]] | None = None
        """A microphone check under way: the frames so far, how many it wants, its result."""
        self._playback: deque[Pcm] = deque()
        """Our own recorded voice, played to us alone (a microphone check)."""
        self.fault_jitter_ms = 0.0
        """Fault injection for tests (--jitter-audio): delay each incoming packet by a random
        0 to this many ms before it reaches its jitter buffer (reordering some)."""

    def start(self) -> None:
        """Start capturing and playing."""
        self._tasks = [
            asyncio.ensure_future(self._capture()),
            asyncio.ensure_future(self._playout()),
        ]

    async def stop(self) -> None:
        """Stop and release the devices."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.source.close()
        self.sink.close()
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    # --- sending -------------------------------------------------------------------------

    def attach(self, peer: bytes, sender: RTCRtpSender) -> None:
        """Send our voice to ``peer`` through this connection's audio sender."""
        self.broadcaster.attach(peer, sender)

    def forget(self, peer: bytes) -> None:
        """A peer's connection is gone."""
        self.broadcaster.forget(peer)
        self.streams.pop(peer, None)
        self.heard_at.pop(peer, None)
        meter = self.meters.pop(peer, None)
        if meter is not None and meter.speaking:
            self._on_level(peer, False, meter.level_db)

    async def _capture(self) -> None:
        meter = self.meters.setdefault(self.me, LevelMeter())
        index = 0
        try:
            async for frame in self.source.frames():
                pts = index * FRAME_SAMPLES
                index += 1
                self.mic_level_db = rms_dbfs(frame)
                sending = self.may_send()
                if sending:
                    await self.broadcaster.send(frame, pts)
                    self._own = frame
                    if self.frame_log is not None:
                        self.frame_log.sent[pts] = self._clock()
                self._meter(self.me, meter, frame if sending else silence())
                self._keep_for_check(frame)
        except Exception:
            log.exception("audio input %s failed; continuing without input", self.source.label)

    # --- a microphone check ---------------------------------------------------------------

    async def record_own(self, seconds: float) -> list[Pcm]:
        """The next ``seconds`` of our input as the room would get it (after voice
        processing), whether or not it is sent."""
        if self._check is not None:
            raise RuntimeError("a microphone check is already under way")
        done: asyncio.Future[list[Pcm]] = asyncio.get_running_loop().create_future()
        self._check = ([], max(1, round(seconds / FRAME_S)), done)
        try:
            return await done
        finally:
            self._check = None

    def play_own(self, frames: list[Pcm]) -> None:
        """Play ``frames`` here only, mixed with the room (the check's playback)."""
        self._playback.extend(frames)

    def _keep_for_check(self, frame: Pcm) -> None:
        check = self._check
        if check is None or check[2].done():
            return
        frames, wanted, done = check
        frames.append(frame)
        if len(frames) >= wanted:
            done.set_result(frames)

    # --- receiving -----------------------------------------------------------------------

    async def on_rtp(self, peer: bytes, packet: object, arrival_time_ms: int = 0) -> None:
        """aiortc's receive hook: file one RTP packet from ``peer`` (see mesh)."""
        routed = await self.route(peer, packet)
        if routed is not None:
            self._take(*routed)

    async def on_guest_voice(self, guest: bytes, frame: object) -> None:
        """A browser guest's packet, relayed by the gateway the signed state names for it
        (checked by the caller): played while the guest may speak, whether we hear the
        room's other voices straight or through a relay."""
        if not self.allowed(guest):
            self.refused_packets += 1
            return
        self._take(guest, frame)

    def _take(self, peer: bytes, packet: object) -> None:
        if self._fault_drop and self._rng.random() < self._fault_drop:
            return  # fault injection for loss tests (--drop-audio)
        if self.fault_jitter_ms:
            delay = float(self._rng.uniform(0, self.fault_jitter_ms)) / 1000
            asyncio.get_running_loop().call_later(delay, self._file, peer, packet)
            return
        self._file(peer, packet)

    async def route(self, peer: bytes, packet: object) -> tuple[bytes, object] | None:
        """Whose voice a packet from ``peer`` is, or None (refused, and counted); a packet
        that came through a relay is passed on to those we relay to (see the module's docs)."""
        relay = self.relay
        csrc = getattr(packet, "csrc", None)
        if csrc:
            payload: bytes = getattr(packet, "payload", b"")
            relayed = None if relay is None else relay.take(peer, csrc[0], payload)
            if relay is None or relayed is None or not self.allowed(relayed.voice):
                self.refused_packets += 1
                return None
            await relay.forward(relayed, self.broadcaster.outlets)
            return relayed.voice, relayed
        if not self.allowed(peer) or (relay is not None and relay.plan.parent() is not None):
            self.refused_packets += 1
            return None
        return peer, packet

    def _file(self, peer: bytes, packet: object) -> None:
        """Put one packet in its speaker's jitter buffer."""
        self.heard_at[peer] = self._clock()
        stream = self.streams.get(peer)
        if stream is None:
            stream = self.streams[peer] = JitterBuffer()
        others_active = any(s.active for p, s in self.streams.items() if p != peer)
        started = stream.push(
            packet.sequence_number,  # type: ignore[attr-defined]
            packet.timestamp,  # type: ignore[attr-defined]
            packet.payload,  # type: ignore[attr-defined]
            self._clock() * 1000,
        )
        if started and not others_active:
            # Nobody else is being played, so the playout clock is free to move: put the next
            # tick where this talkspurt becomes ready instead of up to 20 ms later.
            self._rephase_at = stream.ready_at / 1000
            self._wake.set()

    async def _playout(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += FRAME_S - self._take_back()
            deadline = await self._wait_for_tick(loop, deadline)
            if loop.time() - deadline > 0.2:
                deadline = loop.time()  # a stall: restart the schedule rather than burst
            frame = self._tick()
            if self.frame_log is not None:
                self.frame_log.ticks.append(self._clock())
            if self._playback:  # a microphone check: ours alone, not the room's recording
                self.sink.write(mix([(frame, 1.0), (self._playback.popleft(), 1.0)]))
            else:
                self.sink.write(frame)
            own, self._own = self._own, None
            if self.tap is not None:
                try:
                    self.tap(self._frames, own)
                except Exception:
                    log.exception("audio tap failed; the room's audio goes on")
            if self.recorder is not None:
                self.recorder.write(frame if own is None else mix([(frame, 1.0), (own, 1.0)]))

    async def _wait_for_tick(self, loop: asyncio.AbstractEventLoop, deadline: float) -> float:
        """Sleep until ``deadline``, or until an earlier rephased tick; return the tick time."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - loop.time()))
        if self._rephase_at is not None:
            deadline = max(self._rephase_at, loop.time())
            self._rephase_at = None
            await asyncio.sleep(max(0.0, deadline - loop.time()))
        return deadline

    def _take_back(self) -> float:
        """Seconds to tick sooner: the least excess wait (below a frame) of the streams playing,
        once each has a full window of waits (see :attr:`JitterBuffer.excess_ms`)."""
        playing = [s for s in self.streams.values() if s.active]
        if not playing:
            return 0.0
        excess = min(s.excess_ms for s in playing)
        if excess < PHASE_SLACK_MS:
            return 0.0
        for stream in playing:
            stream.restart_waits()
        return min(excess, FRAME_MS - 1) / 1000

    def _tick(self) -> Pcm:
        now_ms = self._clock() * 1000
        frames = []
        self._frames = []
        for peer, stream in list(self.streams.items()):
            frame = stream.pull(now_ms) if self.allowed(peer) else None
            meter = self.meters.setdefault(peer, LevelMeter())
            self._meter(peer, meter, frame if frame is not None else silence())
            if frame is not None:
                frames.append((frame, self.gains.get(peer, 1.0)))
                self._frames.append((peer, frame))
        return mix(frames)

    def _meter(self, member: bytes, meter: LevelMeter, frame: Pcm) -> None:
        change = meter.feed(frame, int(self._clock() * 1000))
        if change is not None:
            self._on_level(member, change, meter.level_db)


__all__ = ["FRAME_MS", "AudioEngine", "FrameLog"]
