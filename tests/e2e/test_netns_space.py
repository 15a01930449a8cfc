"""A whole Space across seven hosts, driven through the headless interface.

Host, co-host, two speakers and three listeners, each a separate process in its own network
namespace.  After every step every node must report the same state hash and the expected roles,
and the listener's recording must show who was audible when.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.lan import Lan, NodeProcess

pytestmark = pytest.mark.netns

PEOPLE = [  # name, input
    ("Hana", "none"),
    ("Cora", "none"),
    ("Sam", "tone:400"),
    ("Sue", "tone:900"),
    ("Lee", "none"),
    ("Liv", "none"),
    ("Max", "none"),
]


class Space:
    def __init__(self, lan: Lan, tmp_path: Path) -> None:
        self.nodes: dict[str, NodeProcess] = {}
        self.ids: dict[str, str] = {}
        for index, (name, source) in enumerate(PEOPLE):
            extra = ["--host", "Town hall"] if index == 0 else ["--join", "Town hall"]
            output = f"file:{tmp_path / 'lee.wav'}" if name == "Lee" else "none"
            argv = lan.command(
                index,
                "start",
                "--headless",
                "--name",
                name,
                "--home",
                str(tmp_path / name),
                "--input",
                source,
                "--output",
                output,
                "--frame-log",
                str(tmp_path / f"{name}.json"),
                *extra,
            )
            self.nodes[name] = NodeProcess(argv, tmp_path / f"{name}.log")
            self.ids[name] = self.nodes[name].wait_for("ready")["node"]
            if index == 0:
                self.nodes[name].wait_for("joined")
        self.present = set(self.nodes)

    def ask(self, who: str, action: str, target: str | None = None, **extra: Any) -> None:
        command: dict[str, Any] = {"cmd": "request", "action": action} | extra
        if target is not None:
            command["target"] = self.ids[target]
        self.nodes[who].send(**command)

    def roles(self, state: dict[str, Any]) -> dict[str, str]:
        return {m["name"]: m["role"] for m in state["members"]}

    def settle(self, check: Any) -> dict[str, Any]:
        """Wait until the host's state passes ``check``; then every present node must hold
        exactly that state (same seq, same hash)."""
        state = self.nodes["Hana"].wait_for("state", check)
        for name in self.present - {"Hana"}:
            mine = self.nodes[name].wait_for("state", lambda e: e["seq"] == state["seq"])
            assert mine["hash"] == state["hash"], name
        return state


def _energy(samples: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    band = (freqs > hz - 20) & (freqs < hz + 20)
    return float(spectrum[band].sum() / (spectrum.sum() + 1e-9))


def test_a_whole_space(lan7: Lan, tmp_path: Path) -> None:
    space = Space(lan7, tmp_path)
    nodes = space.nodes
    marks: dict[str, float] = {}
    try:
        state = space.settle(lambda e: len(e["members"]) == 7)
        assert set(space.roles(state).values()) == {"host", "listener"}
        # Co-host: invite, accept, promote.
        space.ask("Hana", "invite_speaker", "Cora")
        space.settle(lambda e: any(m["invited"] for m in e["members"]))
        space.ask("Cora", "accept_invite")
        space.settle(lambda e: space.roles(e)["Cora"] == "speaker")
        space.ask("Hana", "add_cohost", "Cora")
        space.settle(lambda e: e["cohosts"] == [space.ids["Cora"]])
        # Sam declines once, then accepts; Sue raises a hand and the co-host takes it.
        space.ask("Hana", "invite_speaker", "Sam")
        space.settle(lambda e: any(m["name"] == "Sam" and m["invited"] for m in e["members"]))
        space.ask("Sam", "decline_invite")
        space.settle(lambda e: not any(m["name"] == "Sam" and m["invited"] for m in e["members"]))
        space.ask("Hana", "invite_speaker", "Sam")
        space.settle(lambda e: any(m["name"] == "Sam" and m["invited"] for m in e["members"]))
        space.ask("Sam", "accept_invite")
        space.settle(lambda e: space.roles(e)["Sam"] == "speaker")
        for name in ("Sue", "Liv", "Max"):
            space.ask(name, "raise_hand")
            state = space.settle(lambda e, n=name: space.ids[n] in e["hands"])
        space.ask("Max", "lower_hand")
        state = space.settle(lambda e: space.ids["Max"] not in e["hands"])
        assert state["hands"] == [space.ids["Sue"], space.ids["Liv"]]  # in raising order
        space.ask("Cora", "accept_hand", "Sue")
        space.settle(lambda e: space.roles(e)["Sue"] == "speaker")
        nodes["Lee"].wait_for("speaking", lambda e: e["name"] == "Sue")
        time.sleep(1.5)
        marks["both"] = time.monotonic()
        time.sleep(1.5)
        # Mute Sue: only Sam is heard.  Then she unmutes herself.
        space.ask("Hana", "mute", "Sue")
        space.settle(lambda e: any(m["name"] == "Sue" and m["muted"] for m in e["members"]))
        time.sleep(0.5)
        marks["muted"] = time.monotonic()
        time.sleep(1.5)
        space.ask("Sue", "unmute")
        space.settle(lambda e: not any(m["name"] == "Sue" and m["muted"] for m in e["members"]))
        # Sam goes back to listening: only Sue is heard.
        space.ask("Cora", "make_listener", "Sam")
        space.settle(lambda e: space.roles(e)["Sam"] == "listener")
        time.sleep(0.5)
        marks["sue_only"] = time.monotonic()
        time.sleep(1.5)
        marks["end_audio"] = time.monotonic()
        # Chat and reactions, title, recording flag.
        space.ask("Hana", "set_title", text="Town hall, part two")
        space.settle(lambda e: e["title"] == "Town hall, part two")
        space.ask("Hana", "set_recording", flag=True)
        space.settle(lambda e: e["recording"])
        nodes["Hana"].wait_for("recording", lambda e: e["on"])
        nodes["Lee"].send(cmd="chat", text="great talk")
        for name in space.present:
            assert nodes[name].wait_for("chat")["text"] == "great talk"
        nodes["Liv"].send(cmd="react", emoji="clap")
        for name in space.present:
            assert nodes[name].wait_for("reaction")["emoji"] == "👏"
        # Remove Max (he may rejoin); block Liv (she may not); the co-host cannot touch the host.
        space.ask("Cora", "mute", "Hana")
        assert "equal or higher role" in nodes["Cora"].wait_for("error")["reason"]
        space.ask("Hana", "remove", "Max")
        assert nodes["Max"].wait_for("left")["reason"] == "removed from the room"
        space.present.discard("Max")
        space.settle(lambda e: "Max" not in space.roles(e))
        nodes["Max"].send(cmd="join", room="Town hall, part two")
        space.present.add("Max")
        space.settle(lambda e: space.roles(e).get("Max") == "listener")
        space.ask("Hana", "block", "Liv")
        assert nodes["Liv"].wait_for("left")["reason"] == "blocked from the room"
        space.present.discard("Liv")
        state = space.settle(
            lambda e: space.ids["Liv"] in e["blocked"] and "Liv" not in space.roles(e)
        )
        nodes["Liv"].send(cmd="join", room="Town hall, part two", wait=3)
        assert (
            "blocked"
            in nodes["Liv"].wait_for("error", lambda e: e["code"] == "join_failed")["reason"]
        )
        # Co-host out and back in; then the host ends the Space for everyone.
        space.ask("Hana", "remove_cohost", "Cora")
        space.settle(lambda e: e["cohosts"] == [])
        nodes["Max"].send(cmd="leave")
        assert nodes["Max"].wait_for("left")["reason"] == "left"
        space.present.discard("Max")
        space.settle(lambda e: "Max" not in space.roles(e))
        space.ask("Hana", "end")
        for name in space.present:
            assert nodes[name].wait_for("ended")["room"] == state["room"]
    finally:
        statuses = {name: node.stop() for name, node in nodes.items()}
    assert set(statuses.values()) == {0}
    ticks = json.loads((tmp_path / "Lee.json").read_text())["ticks"]
    recording = load_audio(tmp_path / "lee.wav")

    def window(start: str, length: float = 1.0) -> np.ndarray:
        first = next(i for i, t in enumerate(ticks) if t >= marks[start])
        return recording[first * FRAME_SAMPLES : first * FRAME_SAMPLES + int(length * SAMPLE_RATE)]

    both, muted, sue_only = window("both"), window("muted"), window("sue_only")
    assert _energy(both, 400) > 0.1 and _energy(both, 900) > 0.1
    assert _energy(muted, 400) > 0.3 and _energy(muted, 900) < 0.01
    assert _energy(sue_only, 900) > 0.3 and _energy(sue_only, 400) < 0.01
