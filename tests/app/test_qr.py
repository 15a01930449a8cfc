"""The QR code drawn with text is the QR code: read the half blocks back into modules."""

from __future__ import annotations

import io

import segno

from p2pspaces.app.console import PlainOutput
from p2pspaces.app.qr import QUIET, qr_lines
from p2pspaces.app.words import Narrator
from p2pspaces.core.events import WebReady

URL = "http://192.168.1.23:8480/"
_TOP_BOTTOM = {"█": (True, True), "▀": (True, False), "▄": (False, True), " ": (False, False)}


def test_the_drawn_code_has_every_module_of_the_real_one() -> None:
    lines = qr_lines(URL)
    light = [[_TOP_BOTTOM[c][half] for c in line] for line in lines for half in (0, 1)]
    matrix = segno.make(URL, error="l", boost_error=False).matrix
    size = len(matrix)
    for row in range(size):
        for col in range(size):
            assert light[row + QUIET][col + QUIET] == (not matrix[row][col])
    assert all(light[r][c] for r in range(QUIET) for c in range(size + 2 * QUIET))  # quiet zone


def test_plain_mode_prints_the_pages_and_the_code() -> None:
    out = PlainOutput(io.StringIO(), Narrator(bytes(32)), terminal=False)
    text = out.render(WebReady(URL, "https://192.168.1.23:8443/", "ab" * 32))
    assert URL in text and "https://192.168.1.23:8443/" in text
    assert "AB:AB:AB" in text
    assert "\n".join(qr_lines(URL)) in text
