"""QR codes of the web page's address, drawn with text for terminals.

Two rows of modules per line with the half-block characters.  Light modules (and the quiet
zone around the code) are drawn as ink, dark ones as blank, so the code reads right on the
dark background most terminals have; the app pins the colours (white on black) to be sure.
"""

from __future__ import annotations

import segno

QUIET = 2
"""Modules of quiet zone around the code (the standard asks for 4; 2 scans fine on screens)."""

_CELLS = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def qr_lines(text: str) -> list[str]:
    """The QR code of ``text`` as lines of half-block characters (light modules inked)."""
    code = segno.make(text, error="l", boost_error=False)
    matrix = [[bool(v) for v in row] for row in code.matrix]
    size = len(matrix)
    width = size + 2 * QUIET

    def light(row: int, col: int) -> bool:
        r, c = row - QUIET, col - QUIET
        return not (0 <= r < size and 0 <= c < size and matrix[r][c])

    rows = size + 2 * QUIET
    return [
        "".join(
            _CELLS[(light(y, x), light(y + 1, x) if y + 1 < rows else True)] for x in range(width)
        )
        for y in range(0, rows, 2)
    ]
