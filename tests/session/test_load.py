"""What a voice short of CPU gives up, and in what order (node/load.py), on the session kit's
fake network and a fake clock: new listeners first, then the newest listener links; never the
authority, a co-host or another voice; and no flapping at the edge."""

from __future__ import annotations

from p2pspaces.core.identity import NodeId
from p2pspaces.core.wire import ActionKind
from p2pspaces.node.load import (
    AT_CAPACITY,
    CEILING_S,
    GROW_S,
    KEEP_AT_LEAST,
    SHED_AFTER_S,
    TICK_S,
    WINDOW_S,
    Capacity,
    LoadGauge,
)

from .kit import FakeNet


def starve(gauge: LoadGauge, now: float, lag_ms: float, seconds: float) -> float:
    """Feed the gauge ``seconds`` of ticks, each ``lag_ms`` late; returns the time after."""
    for _ in range(round(seconds / TICK_S)):
        now += TICK_S + lag_ms / 1000
        gauge.note(lag_ms, now)
    return now


def test_the_gauge_turns_busy_on_a_frame_of_lateness_and_calm_only_well_under_it() -> None:
    gauge = LoadGauge()
    now = starve(gauge, 0.0, 2.0, WINDOW_S)
    assert not gauge.busy  # a loaded but punctual node
    now = starve(gauge, now, 35.0, WINDOW_S)
    assert gauge.busy
    since = gauge.busy_since
    now = starve(gauge, now, 10.0, 3 * WINDOW_S)
    assert gauge.busy and gauge.busy_since == since  # better, not calm: no flapping
    starve(gauge, now, 1.0, WINDOW_S)
    assert not gauge.busy and gauge.busy_for(now) == 0.0


def test_a_busy_speaker_refuses_new_listeners_then_lets_go_of_the_newest_first() -> None:
    net = FakeNet()
    hana, sam, cody, ann = net.add("Hana"), net.add("Sam"), net.add("Cody"), net.add("Ann")
    listeners = [net.add(f"L{i}") for i in range(5)]
    net.room(hana, sam, cody, ann, *listeners)
    net.act(hana, ActionKind.ADD_COHOST, cody)
    net.act(hana, ActionKind.INVITE_SPEAKER, sam)
    net.settle(0.5)
    net.act(sam, ActionKind.ACCEPT_INVITE)
    net.act(hana, ActionKind.INVITE_SPEAKER, ann)
    net.settle(0.5)
    net.act(ann, ActionKind.ACCEPT_INVITE)
    net.act(hana, ActionKind.MUTE, ann)  # a muted speaker is still a voice
    net.settle(1.0)
    state = sam.state
    assert state is not None and state.may_speak(sam.me) and ann.me in state.voice_links()

    linked: list[NodeId] = [s.me for s in listeners]
    gauge = LoadGauge()
    capacity = Capacity(sam, gauge, lambda: linked)
    newcomer = net.add("Late")
    net.join(newcomer, hana)
    net.settle(1.0)

    now = starve(gauge, 100.0, 2.0, WINDOW_S)
    assert capacity.refusal(newcomer.me, now) is None  # room to spare: welcome
    now = starve(gauge, now, 40.0, WINDOW_S)
    assert capacity.full
    assert capacity.refusal(newcomer.me, now) == AT_CAPACITY
    for voice in (hana, cody, ann):  # the authority, a co-host, a (muted) voice: never refused
        assert capacity.refusal(voice.me, now) is None
    assert capacity.shed(now) is None  # first it only stops growing

    linked[:0] = [hana.me, cody.me, ann.me]
    now = starve(gauge, now, 40.0, SHED_AFTER_S)
    order = []
    for _ in range(len(listeners) + 2):
        peer = capacity.shed(now)
        assert capacity.shed(now) is None  # one per window: the gauge must see what it gave
        if peer is not None:
            order.append(peer)
            linked.remove(peer)
        now = starve(gauge, now, 40.0, WINDOW_S)
    kept = listeners[:KEEP_AT_LEAST]
    assert order == [s.me for s in reversed(listeners[KEEP_AT_LEAST:])]  # newest first
    assert linked == [hana.me, cody.me, ann.me, *(s.me for s in kept)]

    # Calm again, it takes back no more than it kept until the ceiling expires, then a few.
    now = starve(gauge, now, 1.0, WINDOW_S)
    assert not gauge.busy
    back = listeners[KEEP_AT_LEAST]
    assert capacity.refusal(back.me, now) == AT_CAPACITY
    now += CEILING_S
    assert capacity.refusal(back.me, now) is None
    linked.append(back.me)
    assert capacity.refusal(listeners[-1].me, now) == AT_CAPACITY  # one at a time
    assert capacity.refusal(listeners[-1].me, now + GROW_S) is None

    # Off the stage, it has nothing to give up: everyone is welcome again at once.
    now = starve(gauge, now, 40.0, WINDOW_S)
    assert capacity.refusal(listeners[-1].me, now) == AT_CAPACITY
    net.act(hana, ActionKind.MAKE_LISTENER, sam)
    net.settle(1.0)
    assert capacity.refusal(listeners[-1].me, now) is None


def test_a_voice_that_is_catching_up_sheds_no_more() -> None:
    net = FakeNet()
    hana, sam, *listeners = (net.add(name) for name in ("Hana", "Sam", "L0", "L1", "L2"))
    net.room(hana, sam, *listeners)
    net.act(hana, ActionKind.INVITE_SPEAKER, sam)
    net.settle(0.5)
    net.act(sam, ActionKind.ACCEPT_INVITE)
    net.settle(1.0)
    gauge = LoadGauge()
    capacity = Capacity(sam, gauge, lambda: [s.me for s in listeners])
    now = starve(gauge, 0.0, 40.0, WINDOW_S + SHED_AFTER_S)
    assert capacity.shed(now) == listeners[-1].me
    now = starve(gauge, now, 10.0, 2 * WINDOW_S)  # better: still busy, no longer over a frame
    assert gauge.busy and capacity.shed(now) is None


def test_the_authority_and_a_listener_never_shed() -> None:
    net = FakeNet()
    hana, ann = net.add("Hana"), net.add("Ann")
    net.room(hana, ann)
    for session, peer in ((hana, ann), (ann, hana)):
        gauge = LoadGauge()
        capacity = Capacity(session, gauge, lambda: [])
        now = starve(gauge, 0.0, 60.0, SHED_AFTER_S + WINDOW_S)
        assert gauge.busy and not capacity.full
        assert capacity.refusal(peer.me, now) is None and capacity.shed(now) is None
