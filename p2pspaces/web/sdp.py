"""The page's WebRTC offer made usable: the candidates a browser hid behind mDNS names are
taken out, to be looked up with the node's own mDNS."""

from __future__ import annotations

import re
from dataclasses import dataclass

_MDNS_HOST = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local")
MDNS_CANDIDATES_MAX = 8
"""The most ``.local`` candidates of one offer the node looks up (a page has one or two)."""


@dataclass(frozen=True, slots=True)
class HiddenCandidate:
    """One of the page's candidates whose address the browser hid behind an mDNS name."""

    index: int
    """The media section it belongs to (its ``m=`` line's index)."""
    value: str
    """The candidate as in the SDP, after ``a=candidate:``."""
    host: str
    """The ``<uuid>.local`` name."""

    def at(self, address: str) -> str:
        """The candidate with the name replaced by the address it resolved to."""
        return self.value.replace(self.host, address, 1)


def without_mdns_candidates(sdp: str) -> tuple[str, list[HiddenCandidate]]:
    """The offer without the page's ``<uuid>.local`` candidates, and those candidates.

    Browsers hide a page's addresses behind mDNS names (Firefox and Safari always, Chromium
    until the page may use the microphone).  aioice resolves them itself, but with a socket of
    its own that on most LANs gets no answer, and it waits for it: that delayed every guest's
    audio.  The gateway looks the names up with the node's own mDNS instead, without holding
    the answer back, and hands over what resolves as trickled candidates.

    The offer's ``a=end-of-candidates`` goes too when a candidate was taken out: otherwise
    aioice, with no pairs to check, would fail at once, before the page's own connectivity
    checks (from which it learns the page's address as a peer-reflexive candidate) arrive."""
    kept: list[str] = []
    hidden: list[HiddenCandidate] = []
    index = -1
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=candidate:"):
            value = line.removeprefix("a=")
            host = next((bit for bit in value.split() if _MDNS_HOST.fullmatch(bit)), None)
            if host is None and ".local " in value:
                continue  # a name we would not look up
            if host is not None:
                if len(hidden) < MDNS_CANDIDATES_MAX:
                    hidden.append(HiddenCandidate(index, value, host))
                continue
        kept.append(line)
    if len(kept) != len(sdp.split("\r\n")):
        kept = [line for line in kept if line != "a=end-of-candidates"]
    return "\r\n".join(kept), hidden
