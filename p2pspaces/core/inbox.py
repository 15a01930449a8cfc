"""A session's intake: every control message from a peer comes in here, is decoded and (if
signed) opened once, and goes to its part by one table of routes; whatever is wrong with it
stays with that one message.  Proofs of a two-faced authority are kept here too.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from p2pspaces.core import wire
from p2pspaces.core.context import SessionContext
from p2pspaces.core.errors import (
    CommandError,
    Equivocation,
    ErrorCode,
    PeerError,
    Unentitled,
    WireError,
)
from p2pspaces.core.events import ErrorEvent
from p2pspaces.core.identity import NodeId

log = logging.getLogger("p2pspaces.session")

EQUIVOCATIONS_MAX = 16
"""Proofs of a two-faced authority kept (one per conflicting pair of updates)."""

Handler = Callable[[NodeId, wire.Signed, Any, bytes, float], None]
"""Takes a signed message: ``(peer, envelope, opened message, the bytes as sent, now)``."""
PlainHandler = Callable[[NodeId, Any, float], None]
"""Takes an unsigned message: ``(peer, message, now)``."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where one kind of message goes: it comes signed, or plain, never either."""

    on_signed: Handler | None = None
    on_plain: PlainHandler | None = None

    @classmethod
    def signed(cls, handler: Handler) -> Route:
        return cls(on_signed=handler)

    @classmethod
    def plain(cls, handler: PlainHandler) -> Route:
        return cls(on_plain=handler)


class Inbox:
    """Routes each message by its type; ``heard`` is told of every message about our room
    (it renews the authority's lease)."""

    def __init__(
        self,
        ctx: SessionContext,
        routes: dict[type[wire.Message], Route],
        heard: Callable[[NodeId, float], None],
    ) -> None:
        self._ctx = ctx
        self._routes = routes
        self._on_heard = heard
        self.equivocations: OrderedDict[tuple[bytes, bytes], None] = OrderedDict()

    def receive(self, peer: NodeId, data: bytes, now: float) -> None:
        """One control message from ``peer`` (size and rate already checked by the shell).

        A signed message is opened once, here: its signer must be one we could take anything
        from (checked before the signature), then the signature is checked and the opened
        message goes to its handler.  Whatever goes wrong stays with this one message: a
        refusal is logged with its reason; a message that proves its sender runs modified
        code (a bad signature, a state or claim its signer had no right to) also costs the
        sender its link for :attr:`Timing.penalty_s`; an exception of our own is logged as
        the bug it is, and the sender is dropped the same way."""
        ctx = self._ctx
        signer: bytes = peer
        try:
            message = wire.decode(data)
            self._heard(peer, message, now)
            if isinstance(message, wire.Signed):
                signer = message.signer
                self._open(peer, message, data, now)
            else:
                route = self._routes.get(type(message))
                if route is None or route.on_plain is None:
                    raise PeerError(f"unexpected {message.TYPE}")
                route.on_plain(peer, message, now)
        except Equivocation as exc:
            self._keep_proof(exc)
        except (Unentitled, WireError) as exc:
            log.warning("refused a message from %s: %s", ctx.name_of(peer), exc.reason)
            if signer == peer:  # an honest node may relay what another signed: not its fault
                ctx.penalize(peer, exc.reason)
        except PeerError as exc:
            log.warning("refused a message from %s: %s", ctx.name_of(peer), exc.reason)
        except CommandError as exc:  # a message for a room we are no longer in
            log.info("ignored a message from %s: %s", ctx.name_of(peer), exc)
        except Exception:  # our own bug: it must not cost anyone else the room
            log.exception("a message from %s broke this node", ctx.name_of(peer))
            ctx.penalize(peer, "its message could not be handled")

    def _open(self, peer: NodeId, envelope: wire.Signed, data: bytes, now: float) -> None:
        if not self._plausible(peer, envelope.signer):
            raise PeerError("signed by a stranger to this room, relayed by another")
        inner = wire.open_signed(envelope)
        self._heard(peer, inner, now)
        route = self._routes.get(type(inner))
        if route is None or route.on_signed is None:
            raise PeerError(f"unexpected signed {inner.TYPE}")
        route.on_signed(peer, envelope, inner, data, now)

    def _heard(self, peer: NodeId, message: wire.Message, now: float) -> None:
        """A message about our room renews its authority's lease; one about another room does
        not (the host's laptop restarted and hosts another Space: it is not keeping ours)."""
        state = self._ctx.state
        if state is not None and getattr(message, "room_id", None) == state.room_id:
            self._on_heard(peer, now)

    def _plausible(self, peer: NodeId, signer: bytes) -> bool:
        """Whether a message signed by ``signer`` could be accepted from ``peer`` at all: its
        own, a fellow member's or a co-host's relayed, or a guest's relayed by a member (its
        gateway); anything else is refused before its signature costs a verification."""
        state = self._ctx.state
        if signer == peer or state is None:
            return True
        if signer in state.members or signer in state.authority_set():
            return True
        return peer in state.members

    def _keep_proof(self, exc: Equivocation) -> None:
        """Proof that the authority signed two different changes for one (epoch, seq): keep
        both signed envelopes (once per pair, however many relays bring it), warn the user."""
        pair = (min(exc.first, exc.second), max(exc.first, exc.second))
        if pair in self.equivocations:
            return
        self.equivocations[pair] = None
        while len(self.equivocations) > EQUIVOCATIONS_MAX:
            self.equivocations.popitem(last=False)
        log.error("the room's authority equivocated: %s", exc.reason)
        self._ctx.emit(ErrorEvent(ErrorCode.EQUIVOCATION, exc.reason))
        # Both signed words to every peer, once: each that holds one of them finds the proof.
        self._ctx.send_all(exc.first)
        self._ctx.send_all(exc.second)
