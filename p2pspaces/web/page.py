"""What passes between the gateway and a guest's page, apart from signed bytes: the room as
the page shows it (JSON), why a guest is out, and the page's WebRTC offer made usable."""

from __future__ import annotations

from typing import Any

from p2pspaces.core.room import RoomState
from p2pspaces.core.wire import ActionKind


def without_mdns_candidates(sdp: str) -> str:
    """The offer without the page's ``<uuid>.local`` candidates.

    Browsers hide a page's addresses behind mDNS names; aioice tries to resolve each one and
    waits about a second for an answer that, on most LANs, never comes, which delayed every
    guest's audio by that second.  Nothing is lost without them: the page's connectivity
    checks reach our own candidates, and aioice learns the page's address from those as a
    peer-reflexive candidate."""
    kept = [
        line
        for line in sdp.split("\r\n")
        if not (line.startswith("a=candidate:") and ".local " in line)
    ]
    return "\r\n".join(kept)


def out_reason(kind: ActionKind) -> str:
    return {
        ActionKind.REMOVE: "removed from the Space by a host",
        ActionKind.BLOCK: "blocked from this Space by a host",
        ActionKind.LEAVE: "you left the Space",
    }.get(kind, "no longer in the Space")


def state_message(state: RoomState | None, me: bytes | None, gateway: bytes) -> dict[str, Any]:
    """The room as a page shows it (names are the members' own text: the page renders them
    as text, never as markup)."""
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
        "gateway": gateway.hex(),
        "members": members,
        "hands": [n.hex() for n in state.hand_queue()],
    }
