"""The timing of a room: one frozen settings object, checked when it is built.

Every delay the session and the node use is here, so tests run the real protocol with short
timers (``Timing(lease_s=0.3, ...)``) and a fake clock instead of sleeping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields


class Switch(enum.StrEnum):
    """A feature a user turns on, off, or leaves to the node (``--web``, ``--process``)."""

    AUTO = "auto"
    """The node decides (each option says how)."""
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds, all of them; ``Timing()`` is what a real node uses."""

    heartbeat_s: float = 1.0
    """How often every node in a room sends a signed heartbeat on each link."""
    lease_s: float = 3.0
    """How long the authority may be silent before the first co-host may take over."""
    rank_step_s: float = 1.0
    """Extra wait per place in the succession list, so co-hosts do not all claim at once."""
    vote_wait_s: float = 1.5
    """How long a candidate waits for votes before asking again."""
    grace_s: float = 3.0
    """How long a member whose link broke keeps its place (a Wi-Fi hiccup)."""
    pending_join_s: float = 10.0
    """How long a linked peer may stay without joining before the authority hangs up."""
    peer_timeout_s: float = 5.0
    """A link silent for this long is dropped (aiortc alone notices only after ~30 s)."""
    penalty_s: float = 30.0
    """How long a peer dropped for breaking the message caps is kept out."""
    join_timeout_s: float = 15.0
    """How long a join may take from dialing to the verified snapshot."""
    resume_wait_s: float = 3.0
    """How long a restarted host looks for the room it hosted before hosting a new one."""
    reconnect_max_s: float = 8.0
    """The longest wait between two dials of the same peer (the backoff doubles up to it)."""
    reannounce_s: float = 5.0
    """How often a room's authority re-sends its mDNS advert (caches expire after partitions)."""
    flush_s: float = 0.5
    """How long queued control messages get to leave before a link is closed on purpose."""
    resync_s: float = 1.0
    """A member asks for a snapshot at most this often."""
    orphan_s: float = 30.0
    """A member that has heard neither its authority nor a takeover for this long takes the
    Space as over (the host's laptop died and no co-host could keep it) and goes back to the
    lobby; it joins again by itself if that host starts a Space again soon after."""

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(f"Timing.{field.name} must be positive")
        if self.lease_s <= self.heartbeat_s:
            raise ValueError("the lease must be longer than the heartbeat interval")
        if self.orphan_s <= self.lease_s + self.vote_wait_s:
            raise ValueError("a member must wait longer for a takeover than a takeover takes")
        if self.peer_timeout_s <= self.heartbeat_s:
            raise ValueError("the peer timeout must be longer than the heartbeat interval")


DEFAULT_TIMING = Timing()
