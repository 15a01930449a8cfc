"""Host succession, live: the shell around :mod:`p2pspaces.core.succession`.

Every node notes when it last heard the room's authority.  aiortc notices a dead peer only after
about 30 s, so our heartbeats decide: once the lease has run out, the co-host of rank ``i`` waits
its turn (``lease + i`` seconds, plus a little jitter), votes for itself, asks the rest of the
authority set for votes when a majority is needed (they grant only if they too have not heard the
authority: pre-vote), and publishes a signed claim of the next epoch on every link.  Members check
the claim against the state they hold and follow it; one whose state differs asks the claimant for
a snapshot.  Audio between the remaining speakers runs on its own links and never waits for this.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from p2pspaces.core import succession, wire
from p2pspaces.core.errors import OutOfSync, PeerError, Refused
from p2pspaces.core.identity import NodeId, short_fingerprint
from p2pspaces.core.room import RoomState
from p2pspaces.core.succession import VoteBook
from p2pspaces.events import Converged
from p2pspaces.net.mesh import Link

if TYPE_CHECKING:
    from p2pspaces.node import Node

log = logging.getLogger(__name__)

VOTE_WAIT_S = 1.5
JITTER_MS = 200


class Succession:
    """One node's part in host succession."""

    def __init__(self, node: Node, clock: Callable[[], float]) -> None:
        self._node = node
        self._clock = clock
        self.book = VoteBook()
        self.last_heard = clock()
        self._jitter_ms = random.randint(0, JITTER_MS)  # noqa: S311 - spreading, not secrecy
        self._claiming: int | None = None
        self._asked_at = 0.0
        self._votes: dict[NodeId, bytes] = {}

    def heard(self, peer: bytes) -> None:
        """A message arrived from ``peer``; if it is the authority, its lease is renewed."""
        replica = self._node.replica
        if replica is not None and peer == replica.state.authority:
            self.last_heard = self._clock()

    def reset(self) -> None:
        """The authority changed or the room was (re)joined: start the lease afresh."""
        self.last_heard = self._clock()
        self._claiming = None
        self._votes.clear()

    def tick(self) -> None:
        """Start or finish a takeover when this node's turn has come."""
        node = self._node
        replica = node.replica
        if replica is None or node.is_authority:
            return
        state = replica.state
        now_ms = int(self._clock() * 1000)
        deadline = succession.takeover_deadline(state, node.node_id, int(self.last_heard * 1000))
        if deadline is None or now_ms < deadline + self._jitter_ms:
            return
        epoch = state.epoch + 1
        if self._claiming == epoch:
            if self._clock() - self._asked_at > VOTE_WAIT_S:
                self._claiming = None  # not enough votes in time: ask again
            return
        if not self.book.vote_for_self(epoch, node.node_id):
            return  # we voted for another co-host this epoch: wait for its claim
        self._claiming, self._asked_at = epoch, self._clock()
        self._votes.clear()
        log.warning("the room's authority is silent; claiming epoch %d", epoch)
        if succession.votes_needed(state) <= 1:
            self._claim()
            return
        request = succession.vote_request(state, node.identity)
        for peer in state.authority_set():
            if peer not in (node.node_id, state.authority):
                node.mesh.send(peer, request)

    def on_vote_request(self, link: Link, data: bytes) -> None:
        """Another co-host asks for our vote."""
        replica = self._node.replica
        if replica is None:
            return
        try:
            vote = self.book.consider(
                replica.state,
                self._node.identity,
                data,
                now_ms=int(self._clock() * 1000),
                last_heard_ms=int(self.last_heard * 1000),
            )
        except Refused as exc:
            link.send(wire.encode(wire.Error("vote_refused", exc.reason[: wire.REASON_MAX])))
            return
        link.send(vote)

    def on_vote(self, envelope: wire.Signed, vote: wire.Vote, data: bytes) -> None:
        """A vote for us arrived; claim once there are enough."""
        replica = self._node.replica
        if replica is None or vote.epoch != self._claiming:
            return
        if vote.candidate != self._node.node_id or envelope.signer != vote.voter:
            raise PeerError("vote for someone else, or signed by someone else")
        self._votes[vote.voter] = data
        if len(self._votes) + 1 >= succession.votes_needed(replica.state):
            self._claim()

    def _claim(self) -> None:
        node = self._node
        replica = node.replica
        if replica is None:
            return
        data = succession.make_claim(replica.state, node.identity, tuple(self._votes.values()))
        claim = succession.verify_claim(replica.state, data)
        replica.accept_takeover(claim)
        node.mesh.broadcast(data)
        log.warning("took over the room as authority of epoch %d", claim.takeover.epoch)
        node.authority_changed()

    def on_claim(self, link: Link, data: bytes) -> None:
        """A co-host (or the returning host) claims the room; follow it if the claim is valid."""
        node = self._node
        replica = node.replica
        if replica is None:
            return
        claim = succession.verify_claim(replica.state, data)
        claimant = claim.takeover.claimant
        was_authority = node.is_authority
        try:
            replica.accept_takeover(claim)
        except OutOfSync:
            # Our state differs from the one the claim is based on: the claimant's snapshot
            # (an epoch newer than ours) puts us right.
            resync = wire.Resync(replica.room_id, replica.state.seq)
            node.mesh.send(NodeId(claimant), wire.encode(resync))
            return
        log.warning(
            "%s is the room's authority now (epoch %d)",
            short_fingerprint(claimant),
            claim.takeover.epoch,
        )
        if was_authority:  # our members are linked to us, perhaps not to the claimant
            for peer in list(node.mesh.links):
                if peer != claimant:
                    node.mesh.send(peer, data)
        node.authority_changed()


class Reunion:
    """After a partition heals: the branch with the higher epoch wins (DESIGN.md section 3).

    An authority that meets its room advertised by another node links to it; heartbeats carry
    epochs, and the side with the lower epoch asks the other for its snapshot.  A superseded
    authority adopts that state (its own changes made while apart are undone, and it says so),
    rejoins, and, if it is the room's host, reclaims the room with the next epoch and blocks again
    every key it had blocked alone: blocks from both branches are kept.
    """

    def __init__(self, node: Node) -> None:
        self._node = node
        self.pending_blocks: set[NodeId] = set()
        self.rejoining = False

    def heartbeat(self, link: Link, beat: wire.Heartbeat) -> None:
        """A heartbeat from the room at a higher epoch than ours, while we think we hold it:
        ask for its state (only an authority answers)."""
        replica = self._node.replica
        if replica is None or beat.room_id != replica.room_id or not self._node.is_authority:
            return
        if beat.epoch > replica.state.epoch:
            link.send(wire.encode(wire.Resync(replica.room_id, replica.state.seq)))

    def superseded(self, old: RoomState, fresh: RoomState) -> None:
        """We were the authority of an older epoch; the room went on without us."""
        node = self._node
        self.pending_blocks = set(old.blocked - fresh.blocked)
        undone = max(0, old.seq - fresh.seq)
        node.emit(
            Converged(fresh.room_id, fresh.epoch, fresh.authority, undone, len(self.pending_blocks))
        )
        self.rejoining = True
        if node.node_id not in fresh.members:
            join = wire.Request(fresh.room_id, 0, wire.Action(wire.ActionKind.JOIN, text=node.name))
            node.mesh.send(fresh.authority, wire.seal_bytes(node.identity, join))

    def after_change(self, state: RoomState) -> None:
        """Once back in the room: the host reclaims it, then blocks again what it blocked."""
        node = self._node
        if not self.rejoining or node.node_id not in state.members:
            return
        self.rejoining = False
        if state.host != node.node_id or node.replica is None:
            return
        data = succession.make_claim(state, node.identity)
        claim = succession.verify_claim(state, data)
        node.replica.accept_takeover(claim)
        node.mesh.broadcast(data)
        node.authority_changed()
        for key in self.pending_blocks:
            node.request_now(wire.Action(wire.ActionKind.BLOCK, key))
        self.pending_blocks.clear()
