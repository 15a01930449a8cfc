"""What passes between the gateway and a guest's page, apart from signed bytes: the room as
the page shows it (JSON), why a guest is out, and the page's WebRTC offer made usable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from p2pspaces.core.identity import short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import ActionKind

MDNS_CANDIDATES_MAX = 8
"""The most ``.local`` candidates of one offer the node looks up (a page has one or two)."""
_MDNS_HOST = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.local")


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


_FIELD_PATH = re.compile(r"^(?:[A-Z]\w*(?:\.\w+)+: )+")
_RANGE = re.compile(r"(\d+) (characters|items), not in (\d+)\.\.(\d+)")


def in_words(reason: str) -> str:
    """A refusal as a person reads it: no codec field paths ("Request.action: Action.text:"),
    no ranges ("300 characters, not in 0..100": "300 characters long; the most is 100")."""
    reason = _FIELD_PATH.sub("", reason)
    reason = re.sub(r"^refused: ", "", reason)
    reason = _FIELD_PATH.sub("", reason)

    def limit(match: re.Match[str]) -> str:
        count, unit, low, high = match.groups()
        if int(count) < int(low):
            return f"{count} {unit}; the fewest is {low}"
        return f"{count} {unit} long; the most is {high}"

    return _RANGE.sub(limit, reason)


def out_reason(kind: ActionKind) -> str:
    return {
        ActionKind.REMOVE: "removed from the Space by a host",
        ActionKind.BLOCK: "blocked from this Space by a host",
        ActionKind.LEAVE: "you left the Space",
    }.get(kind, "no longer in the Space")


def state_message(state: RoomState | None, me: bytes | None, gateway: bytes) -> dict[str, Any]:
    """The room as a page shows it (names are the members' own text: the page renders them
    as text, never as markup; each comes with its short fingerprint, to tell namesakes apart).
    ``blocked`` tells a page whose key the room blocked, before it tries to join (the gateway
    sets ``me`` and ``blocked`` per page)."""
    if state is None:
        return {"t": "state", "room": None}
    members = [
        {
            "id": node.hex(),
            "name": m.name,
            "role": m.role.name.lower(),
            "muted": m.muted,
            "hand": m.hand,
            "invited": m.invited,
            "guest": m.gateway is not None,
            "fp": short_fingerprint(node),
        }
        for node, m in state.members.items()
    ]
    return {
        "t": "state",
        "room": {
            "id": state.room_id.hex(),
            "title": state.title,
            "recording": state.recording,
            "ended": state.ended,
            "host": state.host.hex(),
            "epoch": state.epoch,
            "seq": state.seq,
        },
        "me": me.hex() if me is not None and me in state.members else None,
        "blocked": me is not None and me in state.blocked,
        "gateway": gateway.hex(),
        "members": members,
        "hands": [n.hex() for n in state.hand_queue()],
    }
