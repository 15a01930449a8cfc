"""What a node is told when it is made: one frozen settings object, checked when it is built
(aioquic's ``QuicConfiguration`` is the model; :class:`~p2pspaces.core.settings.Timing` is the
same kind of object for the room's delays).

Things that run (the audio devices, the clock, a frame log) are handed to the node beside its
config; what is here is plain data a front end reads from its flags or its own settings.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from p2pspaces.core import wire
from p2pspaces.core.codec import Invalid, Text
from p2pspaces.core.relays import DIRECT_LISTENERS
from p2pspaces.core.settings import DEFAULT_TIMING, Timing

EVENTS_MAX = 10_000
"""Events a node keeps for a front end that has not read them (the oldest go first)."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Damage a node does on purpose to the audio it receives, to test and measure how the
    playout copes with a bad network (``--drop-audio``, ``--jitter-audio``).  Off by default."""

    drop: float = 0.0
    """The share of received audio packets thrown away at random (0 to 1)."""
    jitter_ms: float = 0.0
    """Each received packet is held back a random 0 to this many ms (reordering some)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.drop <= 1.0:
            raise ValueError("the share of audio packets to drop must be between 0 and 1")
        if not 0.0 <= self.jitter_ms <= 10_000:
            raise ValueError("the audio jitter must be between 0 and 10000 ms")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Who this node is to others and where it keeps things; ``NodeConfig("Ann")`` is a node
    on every interface with mDNS, real timing, and nothing kept on disk but recordings."""

    name: str
    """The display name others see (1 to 32 characters, at least one of them visible)."""
    interface: str | None = None
    """The address (or interface name) to listen and advertise on; None: every interface."""
    timing: Timing = DEFAULT_TIMING
    """The room's delays (short ones make tests fast)."""
    mdns: bool = True
    """Whether the node advertises and browses with mDNS.  Without it, rooms are joined by
    address and members find each other from the room's signed contacts."""
    state_dir: Path | None = None
    """The home folder: the people met before, the room this node hosts (to take it back
    after a crash).  None keeps nothing between runs."""
    recordings: Path | None = None
    """Where a host's recordings go; None: ``recordings`` in the home folder, or in the
    system's temporary folder for a node without one (never the working directory)."""
    faults: Faults = field(default_factory=Faults)
    """Damage done on purpose to received audio (tests and benchmarks only)."""
    relay: bool = True
    """Whether this node may be asked to pass the room's voices on to other listeners in a
    large room (``--no-relay`` opts out: a laptop on battery or a slow link)."""
    direct_listeners: int = DIRECT_LISTENERS
    """While this node holds a room: how many listener nodes hear each voice straight before
    relays carry the rest (see :mod:`p2pspaces.core.relays`)."""
    events_max: int = EVENTS_MAX
    """Events kept for a front end that does not read them; past this the oldest are dropped
    (counted in :attr:`EventFeed.dropped`) and the room goes on."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= wire.NAME_MAX:
            raise ValueError(f"a name has 1 to {wire.NAME_MAX} characters, not {len(self.name)}")
        try:
            Text(wire.NAME_MAX, min_chars=1).parse(self.name)  # the rule the wire checks
        except Invalid as exc:
            raise ValueError(f"the name {self.name!r} cannot be used: {exc}") from None
        if not wire.visible(self.name):
            raise ValueError("a name needs at least one visible character")
        if self.events_max < 1:
            raise ValueError("events_max must be at least 1")
        if self.direct_listeners < 1:
            raise ValueError("at least one listener must hear the voices straight")

    @property
    def recordings_dir(self) -> Path:
        """Where recordings go (see :attr:`recordings`)."""
        if self.recordings is not None:
            return self.recordings
        if self.state_dir is not None:
            return self.state_dir / "recordings"
        return Path(tempfile.gettempdir()) / "p2pspaces-recordings"
