"""A short run of every fuzz target in scripts/fuzz.py (the long runs are the script's), and the
inputs they found kept as regression tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "fuzz.py"


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("p2pspaces_fuzz", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUZZ = _fuzz()


@pytest.mark.parametrize("target", sorted(FUZZ.targets(1)))
def test_every_input_parses_or_raises_the_documented_error(target: str) -> None:
    FUZZ.targets(100 if target == "headless" else 300)[target]()


def test_an_oversize_or_cut_frame_is_refused_in_words() -> None:
    FUZZ.check_frame(b"\xff\xff\xff\xff")  # 4 GiB announced: refused before reading
    FUZZ.check_frame(b"\x00\x00\x00\x10abc")  # cut short: the peer hung up mid-frame


def test_a_join_with_a_wait_that_is_not_a_number_is_a_bad_command() -> None:
    # Found by reading the fuzz target's commands: float("soon") escaped the command reader,
    # which then read no more commands for the rest of the node's life.
    target = FUZZ.HeadlessTarget()
    try:
        target.loop.run_until_complete(
            FUZZ.one_line(target.node, b'{"cmd":"join","room":"x","wait":"soon"}\n', target.done)
        )
        events = []
        while not target.node.events.empty():
            events.append(target.node.events.get_nowait().as_json())
        assert {
            "event": "error",
            "code": "bad_command",
            "reason": "'wait' must be a number from 0 to 600",
        } in events
    finally:
        target.close()
