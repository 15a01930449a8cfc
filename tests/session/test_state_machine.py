"""Random interleavings of every role's requests, link drops, partitions and clock jumps.

After the network heals, every session in the room holds the same state hash; nobody ever acted
beyond their role (listeners' attempts at moderation never take effect); no block is ever lost; a
troll running modified code (forged snapshots, the largest epoch) never becomes authority or changes
the room.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from p2pspaces.core.errors import CommandError
from p2pspaces.core.identity import NodeId
from p2pspaces.core.session import Phase, RoomSession
from p2pspaces.core.statebytes import state_hash
from p2pspaces.core.wire import COUNTER_MAX, Action, ActionKind

from .byzantine import forged_snapshot
from .kit import FakeNet

# Passing takes about 30 s; a failure is shrunk by replaying many examples: give it time to
# report the smallest one rather than a timeout.
pytestmark = pytest.mark.timeout(900)

NAMES = ("Hana", "Cody", "Vic", "Ann", "Bob", "Tom", "Tia")
MODERATION = [
    ActionKind.MUTE,
    ActionKind.MAKE_LISTENER,
    ActionKind.INVITE_SPEAKER,
    ActionKind.ACCEPT_HAND,
    ActionKind.LOWER_HAND,
    ActionKind.REMOVE,
    ActionKind.BLOCK,
]
TROLLING = [
    ActionKind.MUTE,
    ActionKind.REMOVE,
    ActionKind.BLOCK,
    ActionKind.SET_TITLE,
    ActionKind.END,
    ActionKind.MAKE_LISTENER,
    ActionKind.ADD_COHOST,
    ActionKind.REMOVE_COHOST,
    ActionKind.INVITE_SPEAKER,
]
OWN = [
    ActionKind.RAISE_HAND,
    ActionKind.LOWER_HAND,
    ActionKind.ACCEPT_INVITE,
    ActionKind.DECLINE_INVITE,
    ActionKind.UNMUTE,
    ActionKind.MUTE,
    ActionKind.MAKE_LISTENER,
]


class SpaceMachine(RuleBasedStateMachine):
    """Hana hosts, Cody co-hosts, Vic speaks; Ann and Bob listen; Tom and Tia troll."""

    def __init__(self) -> None:
        super().__init__()
        self.net = net = FakeNet(seed=7)
        self.s = {name: net.add(name) for name in NAMES}
        hana, cody, vic = self.s["Hana"], self.s["Cody"], self.s["Vic"]
        net.room(hana, *(self.s[n] for n in NAMES[1:]))
        for member, cohost in ((cody, True), (vic, False)):
            net.act(hana, ActionKind.INVITE_SPEAKER, member)
            net.settle(0.2)
            net.act(member, ActionKind.ACCEPT_INVITE)
            net.settle(0.2)
            if cohost:
                net.act(hana, ActionKind.ADD_COHOST, member)
                net.settle(0.2)
        self.blocked_ever: set[NodeId] = set()
        self.forgers: set[str] = set()  # ran modified code: penalised, so may lag for good

    def _try(self, who: RoomSession, action: Action) -> None:
        try:
            who.request(action, self.net.now)
        except CommandError:
            return  # not in the room, or no link to the authority right now
        self.net.pump(who)

    @rule(
        mod=st.sampled_from(["Hana", "Cody"]),
        kind=st.sampled_from(MODERATION),
        whom=st.sampled_from(["Ann", "Bob"]),
    )
    def moderate(self, mod: str, kind: ActionKind, whom: str) -> None:
        self._try(self.s[mod], Action(kind, self.s[whom].me))

    @rule(
        troll=st.sampled_from(["Tom", "Tia"]),
        kind=st.sampled_from(TROLLING),
        whom=st.sampled_from(["Hana", "Cody", "Vic", "Ann"]),
    )
    def troll(self, troll: str, kind: ActionKind, whom: str) -> None:
        text = "troll" if kind is ActionKind.SET_TITLE else ""
        target_key = None if kind in (ActionKind.SET_TITLE, ActionKind.END) else self.s[whom].me
        self._try(self.s[troll], Action(kind, target_key, text))

    @rule(
        troll=st.sampled_from(["Tom", "Tia"]),
        victim=st.sampled_from(["Hana", "Cody", "Vic", "Ann"]),
        largest=st.booleans(),
    )
    def forge(self, troll: str, victim: str, largest: bool) -> None:
        """Modified code: the troll signs the state it holds as its own, at the next epoch or the
        largest one, and sends it to whoever it can reach."""
        forger = self.s[troll]
        if forger.replica is None:
            return
        epoch = COUNTER_MAX - 1 if largest else None
        data = forged_snapshot(forger, epoch=epoch, title="troll")
        self.forgers.add(troll)
        self.net.connect(forger.me, self.s[victim].me)
        self.net._send(forger.me, self.s[victim].me, data)

    @rule(who=st.sampled_from(["Ann", "Bob", "Tom", "Tia"]), kind=st.sampled_from(OWN))
    def own(self, who: str, kind: ActionKind) -> None:
        self._try(self.s[who], Action(kind))

    @rule(who=st.sampled_from(NAMES), text=st.text(min_size=1, max_size=20))
    def chat(self, who: str, text: str) -> None:
        try:
            self.s[who].chat(text, self.net.now)
        except (CommandError, ValueError):
            return
        self.net.pump(self.s[who])

    @rule(a=st.sampled_from(NAMES), b=st.sampled_from(NAMES))
    def cut(self, a: str, b: str) -> None:
        self.net.cut(self.s[a].me, self.s[b].me, "test: link dropped")

    @rule(side=st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    def partition(self, side: list[str]) -> None:
        other = [n for n in NAMES if n not in side]
        self.net.partition([self.s[n] for n in side], [self.s[n] for n in other])

    @rule()
    def heal(self) -> None:
        self.net.heal()

    @rule(seconds=st.floats(0.0, 1.5))
    def run(self, seconds: float) -> None:
        self.net.run(seconds)

    @rule(seconds=st.floats(1.0, 30.0))
    def clock_jump(self, seconds: float) -> None:
        """The laptop slept: time leaps and every overdue timer fires at once."""
        self.net.now += seconds
        self.net.run(0.01)

    @rule(who=st.sampled_from(NAMES[1:]))
    def rejoin(self, who: str) -> None:
        session = self.s[who]
        authority = next((s for s in self.s.values() if s.is_authority), None)
        if session.phase in (Phase.IDLE, Phase.ENDED) and authority is not None:
            try:
                self.net.join(session, authority)
            except CommandError:
                return

    @invariant()
    def nobody_acts_beyond_their_role(self) -> None:
        for session in self.s.values():
            state = session.state
            if state is None:
                continue
            self.blocked_ever |= state.blocked
            assert state.title != "troll"
            trolls = {self.s["Tom"].me, self.s["Tia"].me}
            assert not trolls & {*state.authority_set(), state.authority}
            assert not state.ended
            assert self.s["Hana"].me not in state.blocked
            assert self.s["Vic"].me not in state.blocked
            vic = state.members.get(self.s["Vic"].me)
            assert vic is None or not vic.muted  # only moderators mute, and none tries
            assert self.s["Cody"].me not in state.blocked

    def teardown(self) -> None:
        net = self.net
        net.heal()
        net.loss = 0.0
        net.run(8.0)
        honest = [s for name, s in self.s.items() if name not in self.forgers]
        in_room = [s for s in honest if s.phase in (Phase.MEMBER, Phase.AUTHORITY)]
        assert in_room
        hashes = {state_hash(s.state) for s in in_room}  # type: ignore[arg-type]
        assert len(hashes) == 1, {s.name: (s.phase, s.state.epoch, s.state.seq) for s in in_room}  # type: ignore[union-attr]
        final = in_room[0].state
        assert final is not None
        assert self.blocked_ever <= final.blocked, "a block was lost"


SpaceMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSpaceMachine = SpaceMachine.TestCase
