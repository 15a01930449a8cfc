"""Chat and emoji reactions: signed by their author, relayed in order by the authority.

Neither is room state.  A member signs a line (or a reaction) and sends it to the authority,
which checks that the author is a member, applies a per-member rate limit, and relays the
author's own signed bytes to everyone; members accept them only from the authority and check
the author's signature, so nobody can put words in someone else's mouth.  Removed and blocked
members are not members, so they cannot chat or react.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pspaces.core import wire
from p2pspaces.core.errors import CommandError, PeerError
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.events import ChatReceived, ReactionReceived
from p2pspaces.net.limits import BucketsByKey
from p2pspaces.net.mesh import Link

if TYPE_CHECKING:
    from p2pspaces.node import Node

CHAT_RATE = 1.0
CHAT_BURST = 5.0
REACTION_RATE = 3.0
REACTION_BURST = 10.0


class Talk:
    """One node's chat and reactions."""

    def __init__(self, node: Node, clock: Callable[[], float]) -> None:
        self._node = node
        self._clock = clock
        self._counter = 0
        self._limits = {
            wire.Chat.TYPE: BucketsByKey(CHAT_RATE, CHAT_BURST),
            wire.Reaction.TYPE: BucketsByKey(REACTION_RATE, REACTION_BURST),
        }

    def say(self, text: str) -> bytes:
        """Sign a chat line; returns the bytes to send to the authority."""
        room = self._node.room_id_or_fail()
        self._counter += 1
        return wire.seal_bytes(self._node.identity, wire.Chat(room, self._counter, text))

    def react(self, emoji: str) -> bytes:
        """Sign a reaction (an emoji of the fixed set, or its name: clap, heart...)."""
        room = self._node.room_id_or_fail()
        choice = _emoji(emoji)
        return wire.seal_bytes(self._node.identity, wire.Reaction(room, choice))

    def relay(self, author: NodeId, data: bytes, message: wire.Chat | wire.Reaction) -> None:
        """As the authority: check, rate-limit and relay an author's signed line or reaction."""
        node = self._node
        replica = node.replica
        if replica is None:
            return
        member = replica.state.members.get(author)
        what = "chat" if isinstance(message, wire.Chat) else "react"
        if member is None:
            node.refuse(author, "refused", f"only members may {what}")
            return
        if not self._limits[message.TYPE].take(author, self._clock()):
            limit = CHAT_BURST if isinstance(message, wire.Chat) else REACTION_BURST
            node.refuse(author, "rate_limited", f"too fast: at most {limit:.0f} at once")
            return
        node.mesh.broadcast(data)
        node.emit(_event(replica.room_id, author, member.name, message))

    def received(
        self, link: Link, envelope: wire.Signed, message: wire.Chat | wire.Reaction, data: bytes
    ) -> None:
        """A line or reaction arrived: relay it (authority) or show it (member)."""
        node = self._node
        replica = node.replica
        if replica is None or message.room_id != replica.room_id:
            raise PeerError(f"{message.TYPE} for another room")
        if node.is_authority:
            if envelope.signer != link.peer_id:
                raise PeerError(f"{message.TYPE} relayed to the authority by someone else")
            self.relay(link.peer_id, data, message)
            return
        if link.peer_id != replica.state.authority:
            raise PeerError(f"{message.TYPE} not relayed by the authority")
        member = replica.state.members.get(envelope.signer)
        name = member.name if member else short_fingerprint(envelope.signer)
        node.emit(_event(replica.room_id, envelope.signer, name, message))


def _emoji(value: str) -> wire.Emoji:
    for emoji in wire.Emoji:
        if value in (emoji.value, emoji.name.lower()):
            return emoji
    names = ", ".join(f"{e.name.lower()} {e.value}" for e in wire.Emoji)
    raise CommandError(f"not one of the reactions: {names}")


def _event(
    room: bytes, author: bytes, name: str, message: wire.Chat | wire.Reaction
) -> ChatReceived | ReactionReceived:
    if isinstance(message, wire.Chat):
        return ChatReceived(room, author, name, message.text)
    return ReactionReceived(room, author, name, message.emoji.value)
