"""One node's whole part in a room, sans I/O: the aioquic/h11 shape (STYLE.md).

A :class:`RoomSession` is fed bytes from peers (:meth:`~RoomSession.receive`), local commands
(:meth:`~RoomSession.host`, :meth:`~RoomSession.join`, :meth:`~RoomSession.request`...), link
changes (:meth:`~RoomSession.link_up`, :meth:`~RoomSession.link_down`) and timer expiry
(:meth:`~RoomSession.handle_timer`), each with ``now`` in seconds from the shell's clock.  It never
reads a clock, sleeps or touches a socket; the shell drains what it decided:
:meth:`~RoomSession.pop_outputs` (messages to send, links to close),
:meth:`~RoomSession.pop_events` (for front ends), :meth:`~RoomSession.next_timer` (when to call
back), and :attr:`~RoomSession.linking` (which peers to link with and dial).

The parts: :class:`~p2pspaces.core.authority.AuthorityRole` and
:class:`~p2pspaces.core.member.MemberRole` are the two halves, :mod:`~p2pspaces.core.takeover`
holds succession and reunion, :mod:`~p2pspaces.core.talk` the chat relay; the life cycle is
:mod:`~p2pspaces.core.lifecycle`.  A bad message from a peer raises a :class:`PeerError` inside,
is logged with its reason here, and changes nothing; a command that cannot be carried out raises
:class:`CommandError` to the caller.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from p2pspaces.core import lifecycle, room, wire
from p2pspaces.core.authority import AuthorityRole, relayed_by
from p2pspaces.core.contacts import ContactBook
from p2pspaces.core.context import Output, SessionContext
from p2pspaces.core.errors import (
    CommandError,
    PeerError,
    WireError,
)
from p2pspaces.core.events import (
    AuthorityChanged,
    Ended,
    Event,
    Joined,
    Left,
    Out,
    StateChanged,
)
from p2pspaces.core.hearing import Hearing
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.inbox import Inbox, Route
from p2pspaces.core.ledger import Replica
from p2pspaces.core.lifecycle import Fate, Phase
from p2pspaces.core.linking import BLOCKED, NOT_A_MEMBER, Linking
from p2pspaces.core.member import FLOODING, MemberRole
from p2pspaces.core.relays import DIRECT_LISTENERS
from p2pspaces.core.room import RoomState
from p2pspaces.core.settings import DEFAULT_TIMING, Timing
from p2pspaces.core.takeover import Reunion, Succession
from p2pspaces.core.talk import ChatRelay
from p2pspaces.core.wire import Action, ActionKind, RoomId

log = logging.getLogger("p2pspaces.session")


_OUT = {Fate.LEFT: Out.LEFT, Fate.REMOVED: Out.REMOVED, Fate.BLOCKED: Out.BLOCKED}

__all__ = ["BLOCKED", "FLOODING", "NOT_A_MEMBER", "Phase", "RoomSession"]


class RoomSession:
    """One node's part in one room at a time: fed inputs with ``now``, drained of outputs."""

    def __init__(
        self,
        identity: Identity,
        name: str,
        timing: Timing = DEFAULT_TIMING,
        *,
        jitter_s: float = 0,
        counter_base: int = 0,
        relays: bool = True,
        direct_listeners: int = DIRECT_LISTENERS,
    ) -> None:
        """``jitter_s`` (drawn once by the shell) spreads co-hosts' takeover turns;
        ``counter_base`` (the shell's clock in milliseconds) starts the counter our signed
        requests, chat lines and reactions carry above any we sent before a restart;
        ``relays`` False opts out of relaying for others; ``direct_listeners`` is how many
        listener nodes hear the voices straight, while we hold a room, before relays take
        the rest (see :mod:`p2pspaces.core.relays`)."""
        self._ctx = ctx = SessionContext(identity, name, timing, counter_base)
        ctx.relays = relays
        self.contacts = ContactBook(ctx)
        self.authority = AuthorityRole(ctx, self, self.contacts)
        self.authority.relays.direct_limit = direct_listeners
        self.talk = ChatRelay(ctx, self.authority)
        self.reunion = Reunion(ctx, self, self.authority)
        self.succession = Succession(ctx, self, self.reunion, jitter_s)
        self.member = MemberRole(ctx, self, self.reunion)
        self.linking = Linking(ctx, self.member)
        """Whom this node links with (read by the shell's link keeper)."""
        self.hearing = Hearing(ctx)
        self._heartbeat_at: float | None = None
        self._leaving: RoomId | None = None
        self._announced: tuple[NodeId, int] | None = None
        signed, plain = Route.signed, Route.plain
        routes: dict[type[wire.Message], Route] = {
            # Signed: opened and checked first (the signer's entitlement is each handler's).
            wire.Request: signed(self.authority.on_request),
            wire.Update: signed(self.member.on_update),
            wire.Snapshot: signed(self.member.on_snapshot),
            wire.Heartbeat: signed(self.member.on_heartbeat),
            wire.Chat: signed(self.talk.on_talk),
            wire.Reaction: signed(self.talk.on_talk),
            wire.Takeover: signed(self.succession.on_claim),
            wire.VoteRequest: signed(self.succession.on_vote_request),
            wire.Vote: signed(self.succession.on_vote),
            # Unsigned: hints, or others' signed envelopes inside, checked where they are used.
            wire.Error: plain(self.member.on_error),
            wire.Resync: plain(lambda p, _m, now: self.authority.on_resync(p, now)),
            wire.Redirect: plain(lambda p, m, _now: self.member.on_redirect(p, m)),
            wire.Contacts: plain(lambda p, m, _now: self.contacts.on_contacts(p, m)),
            wire.History: plain(lambda p, m, _now: self.talk.on_history(p, m)),
            wire.Heard: plain(self.hearing.on_heard),
        }
        self.inbox = Inbox(ctx, routes, self.succession.heard)

    # --- what the shell reads ------------------------------------------------------------

    @property
    def me(self) -> NodeId:
        """This node's key."""
        return self._ctx.me

    @property
    def name(self) -> str:
        """This node's display name."""
        return self._ctx.name

    @property
    def timing(self) -> Timing:
        """The session's timers."""
        return self._ctx.timing

    @property
    def phase(self) -> Phase:
        """Where this node is in its room's life cycle."""
        return self._ctx.phase

    @property
    def replica(self) -> Replica | None:
        """The replica of the room this node holds (None when idle or joining)."""
        return self._ctx.replica

    @property
    def state(self) -> RoomState | None:
        """The room state this node holds, if any."""
        return self._ctx.state

    @property
    def is_authority(self) -> bool:
        """Whether this node is its room's authority."""
        return self._ctx.is_authority and lifecycle.in_room(self._ctx.phase)

    @property
    def links(self) -> frozenset[NodeId]:
        """The peers this session knows it has links with."""
        return frozenset(self._ctx.links)

    def pop_outputs(self) -> list[Output]:
        """What to send and which links to close, in order; the queue is emptied."""
        outputs = list(self._ctx.outputs)
        self._ctx.outputs.clear()
        return outputs

    def pop_events(self) -> list[Event]:
        """The events for front ends, in order; the queue is emptied."""
        events = list(self._ctx.events)
        self._ctx.events.clear()
        return events

    def name_of(self, node: bytes) -> str:
        """A member's display name, else the short fingerprint of its key."""
        return self._ctx.name_of(node)

    def contact_of(self, node: NodeId) -> wire.Contact | None:
        """Where a fellow member said it listens (relayed by the room; for networks where
        mDNS finds nobody)."""
        return self.contacts.reach(node)

    def set_contact(self, addresses: tuple[str, ...], port: int) -> None:
        """Where this node listens, to tell the room (the shell calls this once it listens)."""
        self.contacts.own = (addresses, port)

    def set_web_load(self, http_port: int, https_port: int, guests: int, max_guests: int) -> None:
        """Our guest page (its ports, guests served, their cap), to tell the room."""
        self.contacts.set_web((http_port, https_port, guests, max_guests))

    def may_speak(self, node: bytes) -> bool:
        """Whether audio from ``node`` is to be played (or ours sent)."""
        state = self.state
        return state is not None and lifecycle.in_room(self.phase) and state.may_speak(node)

    # --- commands ------------------------------------------------------------------------

    def host(
        self, title: str, max_speakers: int, *, created_ms: int, nonce: bytes, now: float
    ) -> RoomId:
        """Create a room (the shell supplies the wall-clock ``created_ms`` and a fresh nonce)."""
        self._check_may_start()
        ctx = self._ctx
        try:
            genesis = room.genesis_record(
                ctx.identity,
                ctx.name,
                title,
                created_ms=created_ms,
                nonce=nonce,
                max_speakers=max_speakers,
            )
        except ValueError as exc:
            problem = wire.too_long("The title", title, wire.TITLE_MAX)
            why = f"{problem[:1].lower()}{problem[1:]}" if problem else exc
            raise CommandError(f"cannot host: {why}") from None
        ctx.replica = Replica.from_genesis(genesis)
        ctx.enter(Phase.AUTHORITY)
        self._start_room(now)
        ctx.emit(Joined(ctx.replica.room_id, title, host=True))
        self.applied(None, now)
        return ctx.replica.room_id

    def join(
        self, room_id: RoomId | None, authority: NodeId, now: float, *, reclaim: bool = False
    ) -> None:
        """Start joining ``room_id`` through its ``authority`` (the shell dials it); with
        ``reclaim``, this is the host back after a crash, and it reclaims the room once in.

        ``room_id`` None: joining by address, the room is whichever ``authority`` holds (its
        signed heartbeat names it as soon as the link is up)."""
        self._check_may_start()
        if authority == self.me:
            raise CommandError("that room is advertised by this node itself")
        ctx = self._ctx
        ctx.replica = None
        self.member.begin(room_id, authority)
        ctx.enter(Phase.REJOINING if reclaim else Phase.JOINING)
        self._start_room(now)
        if authority in ctx.links:
            self.member.link_up(authority)

    def abandon_join(self, reason: str) -> None:
        """The shell gave up joining (no answer in time, dialing failed)."""
        if self.phase is Phase.JOINING or (self.phase is Phase.REJOINING and self.replica is None):
            self.member.fail(reason)

    def request(self, action: Action, now: float) -> int:
        """Ask the authority for ``action``; returns the request id a refusal will carry."""
        ctx = self._ctx
        replica = ctx.room()
        req_id = ctx.next_counter()
        request = wire.Request(replica.room_id, req_id, action, replica.state.epoch)
        if self.is_authority:
            self.authority.handle(ctx.me, request, now)
        elif not ctx.send(replica.state.authority, wire.seal_bytes(ctx.identity, request)):
            raise CommandError("not connected to the room's authority; try again in a moment")
        return req_id

    def chat(self, text: str, now: float) -> None:
        """Send a chat line to the room."""
        self.talk.say(text, now)

    def react(self, emoji: str, now: float) -> None:
        """Send an emoji reaction (one of the fixed set, or its name)."""
        self.talk.react(emoji, now)

    def relay_guest(self, guest: NodeId, data: bytes, now: float) -> wire.Message:
        """As a gateway: pass on a browser guest's own signed request, chat line or reaction.

        The envelope must be signed by ``guest`` for our room, and ``guest`` must be one of
        ours (or, for a join, name us); then it goes to the authority as the guest signed it
        (handled here if we are the authority).  Returns the inner message; raises
        :class:`CommandError` with the reason otherwise, and nothing is sent."""
        ctx = self._ctx
        replica = ctx.room()
        try:
            envelope = wire.expect(wire.decode(data), wire.Signed)
            inner = wire.open_signed(envelope, guest)
        except WireError as exc:
            raise CommandError(f"refused: {exc.reason}") from None
        if not isinstance(inner, (wire.Request, wire.Chat, wire.Reaction)):
            raise CommandError(f"refused: a guest cannot send {inner.TYPE}")
        if inner.room_id != replica.room_id:
            raise CommandError("refused: that is not this room")
        action = inner.action if isinstance(inner, wire.Request) else None
        if not relayed_by(replica.state, guest, action, ctx.me):
            raise CommandError("refused: not a guest of this node")
        if self.is_authority:
            if isinstance(inner, wire.Request):
                self.authority.on_request(ctx.me, envelope, inner, data, now)
            else:
                self.talk.on_talk(ctx.me, envelope, inner, data, now)
        elif not ctx.send(replica.state.authority, data):
            raise CommandError("not connected to the room's authority; try again in a moment")
        return inner

    def drop_guest(self, guest: NodeId, now: float) -> None:
        """As a gateway: our guest's page went away; take it out of the room."""
        state = self.state
        if state is not None and state.gateway_of(guest) == self.me and not state.ended:
            self.request(Action(ActionKind.DROP, guest), now)

    def leave(self, now: float) -> None:
        """Start leaving (as authority: hand over to a co-host, or end the room); the shell
        flushes the links, then calls :meth:`finish_leaving`."""
        ctx = self._ctx
        if ctx.phase is Phase.JOINING:
            self.member.fail("left before the join completed")
            return
        replica = ctx.room()
        was_authority = self.is_authority
        self._leaving = replica.room_id
        ctx.enter(Phase.LEAVING)
        leave = Action(ActionKind.LEAVE)
        if was_authority:
            self.authority.try_issue(leave, now)
        else:
            request = wire.Request(replica.room_id, 0, leave)
            ctx.send(replica.state.authority, wire.seal_bytes(ctx.identity, request))

    def finish_leaving(self) -> None:
        """The leave has been flushed: close the room's links and say so."""
        ctx = self._ctx
        room_id, self._leaving = self._leaving, None
        if room_id is None:
            return
        self._close_links("left the room")
        ctx.replica = None
        self._heartbeat_at = None
        ctx.enter(Phase.IDLE)
        ctx.emit(Left(room_id, "left", Out.LEFT))

    # --- the network ---------------------------------------------------------------------

    def link_refused(self, peer: NodeId, reason: str) -> None:
        """Dialing ``peer`` was refused with ``reason``: if the room's authority says we are
        blocked, we are out (we missed the update that blocked us while we were away).  That
        includes the newer epoch's authority a peer redirected us to, if it is the host or a
        co-host we know (a redirect is unsigned: a stranger's word cannot put us out)."""
        state = self.state
        redirected = (
            peer == self._ctx.redirect and state is not None and (peer in state.authority_set())
        )
        if (
            self.phase is Phase.MEMBER
            and state is not None
            and (peer == state.authority or redirected)
            and reason.endswith(BLOCKED)
        ):
            self._out(Left(state.room_id, "blocked from the room", Out.BLOCKED))

    def link_up(self, peer: NodeId, now: float) -> None:
        """A peer's control channel is open."""
        ctx = self._ctx
        ctx.links.add(peer)
        if self.is_authority:
            self.authority.link_up(peer, now)
        else:
            self.member.link_up(peer)

    def link_down(self, peer: NodeId, reason: str, now: float, *, misbehaved: bool = False) -> None:
        """A peer's link is gone (``misbehaved``: we dropped it for breaking the caps)."""
        ctx = self._ctx
        ctx.links.discard(peer)
        if self.is_authority:
            self.authority.link_down(peer, now, misbehaved=misbehaved)
        else:
            self.member.link_down(peer, reason)

    def receive(self, peer: NodeId, data: bytes, now: float) -> None:
        """One control message from ``peer`` (size and rate already checked by the shell):
        see :meth:`Inbox.receive`."""
        self.inbox.receive(peer, data, now)

    @property
    def equivocations(self) -> OrderedDict[tuple[bytes, bytes], None]:
        """Proofs that the room's authority signed two different changes for one seq."""
        return self.inbox.equivocations

    # --- timers --------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` should be called next (None: no timer)."""
        due = [
            t
            for t in (
                self._heartbeat_at,
                self.succession.next_timer(),
                self._orphaned_at(),
                self.authority.next_timer() if self.is_authority else None,
            )
            if t is not None
        ]
        return min(due) if due else None

    def fell_behind(self, late_s: float, now: float) -> None:
        """The shell ran ``late_s`` late (short of CPU, or suspended): what it did not hear
        meanwhile may still be unread, so nobody's silence counts from that time (the
        authority's lease, and with it a takeover, waits that much longer)."""
        self.succession.forgive(late_s, now)

    def handle_timer(self, now: float) -> None:
        """Run whatever is due: heartbeats, a takeover turn, grace drops."""
        if self._heartbeat_at is not None and now >= self._heartbeat_at:
            self._heartbeat(now)
        if self.phase is Phase.MEMBER:
            try:
                self.succession.on_timer(now)
            except PeerError as exc:
                log.warning("takeover attempt failed: %s", exc.reason)
        orphaned = self._orphaned_at()
        if orphaned is not None and now >= orphaned:
            self._orphaned()
        if self.is_authority:
            self.authority.on_timer(now)

    def _orphaned_at(self) -> float | None:
        """When a member stops waiting for a silent authority (no takeover came)."""
        if self.phase is not Phase.MEMBER or self.state is None:
            return None
        return self.succession.last_heard + self.timing.orphan_s

    def _orphaned(self) -> None:
        """Nobody kept the room: the Space is over for us; back to the lobby."""
        ctx = self._ctx
        state = ctx.state
        if state is None:
            return
        authority = state.members.get(state.authority)
        who = authority.name if authority is not None else "the host"
        seconds = f"{self.timing.orphan_s:g} s"
        keepers = [c for c in state.cohosts if c != state.authority]
        nobody = "no co-host took over" if keepers else "there was no co-host to take over"
        log.warning("no word from the room's authority for %s and no takeover: leaving", seconds)
        ctx.emit(
            Ended(
                state.room_id,
                f"no word from {who} for {seconds} and {nobody}",
                orphaned_by=state.authority,
            )
        )
        self._close_links("the room's authority went quiet")
        self._heartbeat_at = None
        ctx.enter(Phase.ENDED)

    def _heartbeat(self, now: float) -> None:
        replica = self.replica
        if lifecycle.may_start(self.phase):
            self._heartbeat_at = None
            return
        self._heartbeat_at = now + self.timing.heartbeat_s
        if replica is None or not lifecycle.in_room(self.phase):
            return  # still joining: beats start once we hold the room
        self._ctx.send_all(self._ctx.heartbeat())

    # --- what the parts report (Hooks) ---------------------------------------------------

    def applied(self, action: Action | None, now: float, actor: NodeId | None = None) -> None:
        """A new state is in place (``actor``'s ``action`` made it; None: a snapshot):
        report it; end or leave the room if it says so."""
        ctx = self._ctx
        replica = ctx.replica
        if replica is None:
            return
        state = replica.state
        ctx.emit(StateChanged(state, actor if action is not None else None, action))
        self.reunion.after_change(state, now)
        self._tell_contact(state)
        verdict = lifecycle.fate(state, ctx.me, ctx.phase, action)
        if verdict is Fate.ENDED:
            self._ended(state, action, actor)
        elif verdict is Fate.COME_BACK:
            self.reunion.come_back(state)  # a host then reclaims its room
        elif verdict is not Fate.STAY:
            how = _OUT[verdict]
            self._out(
                Left(state.room_id, "left" if how is Out.LEFT else f"{how} from the room", how)
            )

    def welcomed(self, joiner: NodeId) -> None:
        """As the authority: a joiner has the state; now its contacts and the recent chat."""
        self.contacts.hand_to(joiner)
        self.talk.hand_history(joiner)

    def authority_changed(self, now: float, previous: NodeId | None, *, took_over: bool) -> None:
        """Another node (or this one) holds the room now: tell, and tidy the roster.

        ``previous`` is None for the first state of a join.  After a takeover of our own, the
        silent authority we replaced is dropped from the roster at once (it has been silent
        past its lease; if it comes back, it rejoins and, as host, reclaims).
        """
        ctx = self._ctx
        state = ctx.room().state if ctx.phase is not Phase.LEAVING else ctx.state
        if state is None:
            return
        self.succession.reset(now)
        self.authority.reset()
        ctx.redirect = None
        if ctx.phase in (Phase.MEMBER, Phase.AUTHORITY):  # rejoining: see Reunion.after_change
            ctx.enter(Phase.AUTHORITY if state.authority == ctx.me else Phase.MEMBER)
        if previous is None:
            return
        ctx.emit(
            AuthorityChanged(
                state.room_id,
                state.epoch,
                state.authority,
                ctx.name_of(state.authority),
                previous,
                took_over,
            )
        )
        ctx.emit(StateChanged(state))
        if state.authority != ctx.me or ctx.phase is not Phase.AUTHORITY:
            return
        ctx.send_all(ctx.heartbeat())  # attests our first state, for our successors' claims
        for peer in sorted(ctx.links):
            self.authority.link_up(peer, now)  # members keep their places; others must join
        gone = {m for m in state.authority_set() if m not in ctx.links} - {ctx.me}
        if took_over and previous != ctx.me:
            gone.add(previous)
            ctx.hangup(previous, "took over from it: silent past its lease", flush=False)
        for member in sorted(gone):
            if member in state.members:
                self.authority.try_issue(Action(ActionKind.DROP, member), now)

    def evicted(self, reason: str) -> None:
        """The authority dropped us for flooding: we are out, and say for how long."""
        state = self.state
        if state is not None:
            self._out(
                Left(state.room_id, f"dropped by the room for flooding: {reason}", Out.FLOODED)
            )

    # --- helpers -------------------------------------------------------------------------

    def _check_may_start(self) -> None:
        if not lifecycle.may_start(self.phase):
            raise CommandError("already in a room; leave it first")

    def _tell_contact(self, state: RoomState) -> None:
        """Keep the authority's contact book current: tell each new authority (or the same
        one again after it dropped us) where we listen; forget members that left."""
        self.contacts.prune(state)
        ctx = self._ctx
        if ctx.me not in state.members or ctx.phase is not Phase.MEMBER:
            self._announced = None
            return
        key = (state.authority, state.epoch)
        if self._announced != key and state.authority in ctx.links:
            self._announced = key
            self.contacts.announce(state.authority)

    def _start_room(self, now: float) -> None:
        self._heartbeat_at = now + self.timing.heartbeat_s
        self.succession.reset(now)
        self.authority.reset()
        self.reunion.pending_blocks.clear()
        self.contacts.clear()
        self.hearing.clear()
        self._announced = None
        self._ctx.claim = self._ctx.redirect = None

    def _ended(self, state: RoomState, action: Action | None, actor: NodeId | None) -> None:
        ctx = self._ctx
        left = action is not None and action.kind is ActionKind.LEAVE
        by_me = actor == ctx.me and not left
        ender = state.members.get(actor) if actor is not None else None
        if left:
            reason = "the host left and no co-host could take over"
        elif by_me:
            reason = "you ended the Space"
        else:
            reason = f"{ender.name if ender else 'the host'} ended the Space"
        ctx.emit(Ended(state.room_id, reason, by_me))
        self._close_links("the room ended")
        self._heartbeat_at = None
        ctx.enter(Phase.ENDED)

    def _out(self, event: Left) -> None:
        """We are no longer in the room (removed, blocked, dropped)."""
        ctx = self._ctx
        ctx.emit(event)
        self._close_links("left the room")
        ctx.replica = None
        self._heartbeat_at = None
        ctx.enter(Phase.IDLE)

    def _close_links(self, reason: str) -> None:
        for peer in sorted(self._ctx.links):
            self._ctx.hangup(peer, reason)
