"""The short soak (issue 11, part 3) in CI: scripts/soak.py for 60 s on loopback.  Listeners
join and leave every 3 s, a host action and a chat line every second, the second speaker's link
is cut once; at the end every node holds the same state, the host saw every chat line, a
listener that stayed hears both voices and the cut link is back.  The 10-minute run (and its
memory slope) is the script's."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent.parent / "scripts" / "soak.py"


def _soak(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # the scripts share scripts/benchkit.py
    spec = importlib.util.spec_from_file_location("p2pspaces_soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
async def test_a_minute_of_churn_cuts_and_chat_leaves_the_room_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await _soak(monkeypatch).run(60.0, 3.0) == 0
