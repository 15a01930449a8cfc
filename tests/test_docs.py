"""The reference for scripts says what the code does: every error code is documented."""

from __future__ import annotations

import re
from pathlib import Path

from p2pspaces.core.errors import ErrorCode

HEADLESS = Path(__file__).resolve().parent.parent / "docs" / "headless.md"


def test_docs_headless_lists_exactly_the_error_codes() -> None:
    text = HEADLESS.read_text()
    paragraph = text[text.index("Error codes:") :].split("\n\n")[0]
    documented = set(re.findall(r"`([a-z_]+)`", paragraph)) - {"reason", "join"}
    assert documented == {code.value for code in ErrorCode}
