"""This node's sound (:class:`Voice`): the audio engine hooked to the room session (whose audio
is sent and played: the signed state decides), speaking indicators as events, the reports of how
loud we play each speaker ("heard by"), the volumes set here, and the microphone check."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from p2pspaces.audio.devices import NullSink, SilentSource, Sink, Source
from p2pspaces.audio.engine import AudioEngine, FrameLog
from p2pspaces.audio.level import FLOOR_DB, VERDICT_WORDS, Verdict, rms_dbfs, verdict
from p2pspaces.audio.processing import processor_of
from p2pspaces.audio.relay import RelayPath
from p2pspaces.core import lifecycle
from p2pspaces.core.errors import CommandError
from p2pspaces.core.events import Event, MicCheck, Notice, Quiet, Speaking
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.session import RoomSession
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node.config import Faults
from p2pspaces.node.relaying import RelayWatch, RoomRelays

NO_FAULTS = Faults()
MAX_GAIN = 2.0
"""The loudest a member can be played here (twice as sent)."""


MIC_CHECK_S = 3.0
"""How long a microphone check records (and then plays back)."""
MIC_CHECK_SLACK_S = 2.0
"""How much longer than that the input may take before it counts as giving no sound."""
VOICES_HEARD_S = 2.0
"""A voice whose packet came this recently reaches us (the authority's check on a listener
that hears nothing through its relay)."""
HEARING_S = 1.0
"""How often a node reports what it hears to each speaker (and learns who hears it)."""


async def mic_check(engine: AudioEngine, seconds: float, emit: Callable[[Event], None]) -> MicCheck:
    """Record ``seconds`` of the input as the room would get it (after voice processing), play
    it back on this node only, and say how it sounds; each stage is an event."""
    emit(MicCheck("recording", seconds))
    try:
        async with asyncio.timeout(seconds + MIC_CHECK_SLACK_S):
            frames = await engine.record_own(seconds)
    except TimeoutError:
        words = f"no sound came from the input ({engine.source.label}): choose one with --input"
        done = MicCheck("done", seconds, FLOOR_DB, str(Verdict.SILENT), words)
        emit(done)
        return done
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    peak = max((rms_dbfs(frame) for frame in frames), default=FLOOR_DB)
    emit(MicCheck("playing", seconds))
    engine.play_own(frames)
    await asyncio.sleep(seconds)
    found = verdict(peak)
    done = MicCheck("done", seconds, peak, str(found), VERDICT_WORDS[found])
    emit(done)
    return done


def report_hearing(engine: AudioEngine, session: RoomSession, now: float) -> None:
    """Once a second: tell each speaker how loud we play it, and, while we speak, learn who
    hears us (see :mod:`p2pspaces.core.hearing`)."""
    meters = engine.meters
    own = meters.get(session.me)
    played = {m: meter.take_peak() for m, meter in meters.items() if m != session.me}
    session.hearing.report(played)
    session.hearing.tick(own is not None and own.speaking, now)


NEARBY_WORDS = (
    "Your microphone hears the room from another laptop's speakers nearby, so the room hears "
    "itself again: use headphones, or turn the speakers down."
)
RELAYING_WORDS = (
    "The room is large: your laptop now passes the speakers on to a few other listeners "
    "(start with --no-relay to opt out)."
)
NEARBY_AGAIN_S = 120.0
"""While it goes on, the warning is repeated this seldom."""


class Voice:
    """This node's sound, as the node and its front ends use it: the engine, the volumes set
    here, the input's level, the microphone check and the hearing reports."""

    def __init__(
        self,
        session: RoomSession,
        identity: Identity,
        source: Source | None,
        sink: Sink | None,
        *,
        clock: Callable[[], float],
        emit: Callable[[Event], None],
        faults: Faults = NO_FAULTS,
        frame_log: FrameLog | None = None,
    ) -> None:
        self._session, self._clock, self._emit = session, clock, emit
        engine = AudioEngine(
            session.me,
            source or SilentSource(),
            sink or NullSink(),
            clock,
            self._on_level,
            fault_drop=faults.drop,
        )
        engine.fault_jitter_ms = faults.jitter_ms
        engine.frame_log = frame_log
        # It sends only while we are an unmuted speaker, and plays only those who are.
        engine.may_send = lambda: session.may_speak(session.me)
        engine.allowed = session.may_speak
        # In a large room, voices reach some listeners through relays (see RoomRelays).
        relays = RoomRelays(session, identity)
        engine.relay = RelayPath(relays)
        engine.broadcaster.routes = relays
        self.engine = engine
        self.watch = RelayWatch(session, engine.heard_at)
        """Our relay, watched for passing nothing on (see :class:`RelayWatch`)."""
        session.authority.voices_heard = self.voices_heard
        self._relaying = False

    def _on_level(self, member: bytes, speaking: bool, level_db: float) -> None:
        """A member started or stopped speaking (as this node plays it): an event."""
        session = self._session
        state = session.state
        if state is None or not lifecycle.in_room(session.phase):
            return
        name = session.name_of(member)
        if speaking:
            self._emit(Speaking(state.room_id, member, name, level_db))
        else:
            self._emit(Quiet(state.room_id, member, name))

    def set_volume(self, member: NodeId, gain: float) -> float:
        """Play ``member`` at ``gain`` (0 to 2; 1 is as sent) on this node only; returns it."""
        gain = min(MAX_GAIN, max(0.0, gain))
        self.engine.gains[member] = gain
        return gain

    def volume(self, member: NodeId) -> float:
        """The gain ``member`` is played at here."""
        return self.engine.gains.get(member, 1.0)

    @property
    def mic_level_db(self) -> float:
        """The input's level now (dBFS), whether or not it is sent."""
        return self.engine.mic_level_db

    async def mic_check(self, seconds: float = MIC_CHECK_S) -> MicCheck:
        """Record ``seconds`` of the microphone as the room would get it, play it back here
        only, and say how it sounds (see :func:`mic_check`)."""
        return await mic_check(self.engine, seconds, self._emit)

    def voices_heard(self) -> bool:
        """Whether a voice of the room reaches us now (or we are one, sending)."""
        session, now = self._session, self._clock()
        if session.may_speak(session.me):
            return True
        return any(
            now - at <= VOICES_HEARD_S and session.may_speak(voice)
            for voice, at in self.engine.heard_at.items()
        )

    def _watch_relay(self, now: float) -> None:
        """Tell the person when their laptop starts relaying; and when our relay passes
        nothing on while the room's voices speak, ask to hear straight."""
        children = len(self.engine.relay.plan.children()) if self.engine.relay else 0
        if children and not self._relaying:  # said once: plans change, the fact does not
            self._emit(Notice(RELAYING_WORDS))
            self._relaying = True
        relay = self.watch.silent(now)
        if relay is None:
            return
        try:
            self._session.request(Action(ActionKind.RELAY, via=None), now)
        except CommandError:
            return
        name = self._session.name_of(relay)
        self._emit(
            Notice(
                f"Nothing came through {name}'s laptop, which relayed the room to you: "
                "asking to hear the speakers straight."
            )
        )

    async def every_second(self, pump: Callable[[], None]) -> None:
        """For ever, once a second: the hearing reports (see :func:`report_hearing`), a
        warning when another laptop's speakers are near our microphone (see
        :mod:`p2pspaces.audio.nearby`), and the watch on our relay (see
        :class:`~p2pspaces.node.relaying.RelayWatch`)."""
        warned = -NEARBY_AGAIN_S
        while True:
            await asyncio.sleep(HEARING_S)
            now = self._clock()
            report_hearing(self.engine, self._session, now)
            self._watch_relay(now)
            processor = processor_of(self.engine.source)
            if processor is not None and processor.nearby.heard and now - warned > NEARBY_AGAIN_S:
                warned = now
                self._emit(Notice(NEARBY_WORDS))
            pump()
