"""The error hierarchy of p2pspaces.

Three kinds of failure get three treatments (STYLE.md, habit 3): a caller's mistake raises
``ValueError``/``TypeError`` as Python does; bad input from a peer raises a subclass of
:class:`PeerError` carrying a ``reason`` that is logged, counted and never crashes the node; a
problem with local files raises :class:`IdentityError`.  Foreign exceptions (msgpack,
cryptography) are translated into these at the module edge.
"""

import enum


class ErrorCode(enum.StrEnum):
    """The stable codes of ``error`` events and of refusals on the wire (docs/headless.md
    lists each, checked by a test).  A peer may send a code not listed: it is passed on as
    text."""

    REFUSED = "refused"
    RATE_LIMITED = "rate_limited"
    FLOODING = "flooding"
    JOIN_FAILED = "join_failed"
    LINK_REFUSED = "link_refused"
    HOSTING_NOT_SAVED = "hosting_not_saved"
    RECORDING_FAILED = "recording_failed"
    WEB_FAILED = "web_failed"
    VOTE_REFUSED = "vote_refused"
    BRANCH_REFUSED = "branch_refused"
    EQUIVOCATION = "equivocation"
    BAD_COMMAND = "bad_command"
    COMMAND_FAILED = "command_failed"
    INTERNAL_ERROR = "internal_error"
    AUTHORITY_LOST = "authority_lost"
    WRONG_ROOM = "wrong_room"
    NAME_CLASH = "name_clash"


class P2PSpacesError(Exception):
    """Base of every error p2pspaces raises on purpose."""


class CommandError(P2PSpacesError):
    """A command from our own front end that cannot be carried out now (not in a room, no
    such room, a chat line too long...); the message says why."""


class AlreadyTold(CommandError):
    """A command failed and an event already told the user why (a join refused by the room):
    a front end says nothing more, so each failure is said once."""


class IdentityError(P2PSpacesError):
    """The node's key file is missing, unreadable or corrupt."""


class PeerError(P2PSpacesError):
    """Something a peer sent was refused; ``reason`` says why in a short phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WireError(PeerError):
    """Bytes that are not a valid message: too big, malformed, wrong fields or bad signature."""


class Refused(PeerError):
    """A well-formed message that the room's rules do not allow (an unauthorised action,
    a stale epoch, a skipped seq, a hash mismatch, an invalid claim)."""


class OutOfSync(Refused):
    """An update that does not follow this replica's state (a gap, an unknown epoch, a broken
    hash chain): the member should ask the authority for a snapshot."""


class Unentitled(Refused):
    """Signed by a key that had no right to sign it: a state, claim or vote whose signer cannot
    show how it came to hold that right.  Honest nodes never send one, so its sender is
    penalised (docs/DESIGN.md section 3; docs/SECURITY.md)."""


class Equivocation(Refused):
    """The same (epoch, seq) validly signed with two different contents: proof of a faulty or
    malicious authority.  ``first`` and ``second`` are the two signed envelopes."""

    def __init__(self, reason: str, first: bytes, second: bytes) -> None:
        super().__init__(reason)
        self.first = first
        self.second = second
