"""Chat and emoji reactions: signed by their author, relayed in order by the authority.

Neither is room state.  A member signs a line (or a reaction) and sends it to the authority,
which checks that the author is a member, applies a per-member rate limit, and relays the
author's own signed bytes to every member; members accept them only from the authority and check
the author's signature, so nobody can put words in someone else's mouth.  Removed and blocked
members are not members, so they cannot chat or react.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from p2pspaces.core import wire
from p2pspaces.core.context import SessionContext
from p2pspaces.core.errors import CommandError, ErrorCode, PeerError, WireError
from p2pspaces.core.events import ChatReceived, ReactionReceived
from p2pspaces.core.identity import NodeId
from p2pspaces.core.limits import BucketsByKey

CHAT_RATE = 1.0
CHAT_BURST = 5.0
REACTION_RATE = 3.0
REACTION_BURST = 10.0


class Fresh(Protocol):
    """What tells a guest's relayed line from a replay (the authority's counters)."""

    def stale(self, signer: NodeId, relay: NodeId, epoch: int, counter: int) -> str | None: ...


class ChatRelay:
    """One node's chat and reactions: signing its own, relaying (as authority) or showing."""

    def __init__(self, ctx: SessionContext, fresh: Fresh) -> None:
        self._ctx = ctx
        self._fresh = fresh
        self._limits = {
            wire.Chat.TYPE: BucketsByKey(CHAT_RATE, CHAT_BURST),
            wire.Reaction.TYPE: BucketsByKey(REACTION_RATE, REACTION_BURST),
        }
        self._history: deque[bytes] = deque(maxlen=wire.HISTORY_MAX)
        """The room's last chat lines as their authors signed them (every node keeps them, so
        a co-host that takes over can give them to joiners too)."""
        self._room: bytes | None = None

    def _remember(self, room: bytes, data: bytes) -> None:
        if room != self._room:
            self._history.clear()
            self._room = room
        if data not in self._history:
            self._history.append(data)

    def hand_history(self, joiner: NodeId) -> None:
        """As the authority: give a joiner the room's last chat lines (after its snapshot)."""
        replica = self._ctx.replica
        if replica is not None and replica.room_id == self._room and self._history:
            history = wire.History(replica.room_id, tuple(self._history))
            self._ctx.send(joiner, wire.encode(history))

    def on_history(self, peer: NodeId, message: wire.History) -> None:
        """The room's last lines, from the authority: show the ones we have not seen, as
        earlier lines (a rejoin does not repeat what we saw)."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None or message.room_id != replica.room_id:
            return
        if peer != replica.state.authority:
            raise PeerError("chat history not from the room's authority")
        for data in message.entries:
            try:
                envelope, chat = wire.open_signed_bytes(data, wire.Chat)
            except WireError as exc:
                raise PeerError(f"bad line in the chat history: {exc}") from None
            if chat.room_id != replica.room_id or data in self._history:
                continue
            self._remember(replica.room_id, data)
            name = ctx.name_of(envelope.signer)
            ctx.emit(ChatReceived(replica.room_id, envelope.signer, name, chat.text, earlier=True))

    def say(self, text: str, now: float) -> None:
        """Sign a chat line and send it to the room."""
        ctx = self._ctx
        room = ctx.room().room_id
        problem = wire.too_long("That chat line", text, wire.CHAT_MAX)
        if problem is not None:
            raise CommandError(f"{problem[:-1]}; nothing was sent")
        try:
            message = wire.Chat(room, ctx.next_counter(), text, ctx.epoch())
        except ValueError as exc:
            raise CommandError(f"cannot send that chat line: {exc}") from None
        self._send(message, now)

    def react(self, emoji: str, now: float) -> None:
        """Sign a reaction (an emoji of the fixed set, or its name: clap, heart...)."""
        ctx = self._ctx
        picked = emoji_named(emoji)
        self._send(wire.Reaction(ctx.room().room_id, picked, ctx.next_counter(), ctx.epoch()), now)

    def _send(self, message: wire.Chat | wire.Reaction, now: float) -> None:
        ctx = self._ctx
        data = wire.seal_bytes(ctx.identity, message)
        if ctx.is_authority:
            self.relay(ctx.me, data, message, now)
        elif not ctx.send(ctx.room().state.authority, data):
            raise CommandError("not connected to the room's authority; try again in a moment")

    def relay(
        self, author: NodeId, data: bytes, message: wire.Chat | wire.Reaction, now: float
    ) -> None:
        """As the authority: check, rate-limit and relay an author's signed line or reaction."""
        ctx = self._ctx
        state = ctx.room().state
        member = state.members.get(author)
        what = "chat" if isinstance(message, wire.Chat) else "react"
        if member is None:
            ctx.refuse(author, ErrorCode.REFUSED, f"only members may {what}")
            return
        if not self._limits[message.TYPE].take(author, now):
            limit = CHAT_BURST if isinstance(message, wire.Chat) else REACTION_BURST
            ctx.refuse(author, ErrorCode.RATE_LIMITED, f"too fast: at most {limit:.0f} at once")
            return
        ctx.send_members(data)  # the author too: it sees its line in the room's order
        if isinstance(message, wire.Chat):
            self._remember(state.room_id, data)
        ctx.emit(_event(state.room_id, author, member.name, message))

    def on_talk(
        self,
        peer: NodeId,
        envelope: wire.Signed,
        message: wire.Chat | wire.Reaction,
        data: bytes,
        now: float,
    ) -> None:
        """A line or reaction arrived: relay it (authority) or show it (member)."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None or message.room_id != replica.room_id:
            raise PeerError(f"{message.TYPE} for another room")
        if ctx.is_authority:
            author = NodeId(envelope.signer)
            if author != peer:
                if replica.state.gateway_of(author) != peer:
                    raise PeerError(f"{message.TYPE} relayed to the authority by someone else")
                counter = message.chat_id if isinstance(message, wire.Chat) else message.reaction_id
                stale = self._fresh.stale(author, peer, message.epoch, counter)
                if stale is not None:
                    ctx.refuse(author, "stale", stale, counter, via=peer)
                    return
            self.relay(author, data, message, now)
            return
        if peer != replica.state.authority:
            raise PeerError(f"{message.TYPE} not relayed by the authority")
        if isinstance(message, wire.Chat):
            if data in self._history:
                return  # already shown (it came in the history before the relay)
            self._remember(replica.room_id, data)
        name = ctx.name_of(envelope.signer)
        ctx.emit(_event(replica.room_id, envelope.signer, name, message))


def emoji_named(value: str) -> wire.Emoji:
    """The reaction given as itself or by name; :class:`CommandError` lists the choices."""
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
