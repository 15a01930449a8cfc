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
    FUZZ.targets(300)[target]()


def test_an_oversize_or_cut_frame_is_refused_in_words() -> None:
    FUZZ.check_frame(b"\xff\xff\xff\xff")  # 4 GiB announced: refused before reading
    FUZZ.check_frame(b"\x00\x00\x00\x10abc")  # cut short: the peer hung up mid-frame
