"""Signed updates and snapshots: replicas agree, and bad updates change nothing."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pspaces.core import room, statebytes, wire
from p2pspaces.core.errors import Equivocation, OutOfSync, Refused, WireError
from p2pspaces.core.identity import NodeId
from p2pspaces.core.ledger import Replica
from p2pspaces.core.wire import Action, ActionKind, Update

from .kit import Space, full_space, person

PEOPLE = [person(seed) for seed in range(1, 9)]

steps = st.lists(
    st.tuples(
        st.integers(0, len(PEOPLE) - 1),
        st.sampled_from(list(ActionKind)),
        st.none() | st.integers(0, len(PEOPLE) - 1),
        st.booleans(),
    ),
    max_size=60,
)


def _run(space: Space, plan: list[tuple[int, ActionKind, int | None, bool]]) -> list[bytes]:
    """Let the authority issue every step the rules allow; return the signed updates."""
    updates = []
    for actor, kind, target, flag in plan:
        action = Action(
            kind, PEOPLE[target].node_id if target is not None else None, "P" + str(actor), flag
        )
        authority = next(p for p in PEOPLE if p.node_id == space.state.authority)
        try:
            updates.append(space.replica.issue(authority, PEOPLE[actor].node_id, action))
        except Refused:
            continue
    return updates


@settings(max_examples=150, deadline=None)
@given(steps)
def test_replicas_applying_the_same_updates_hold_identical_states(plan: list) -> None:
    space = Space.create()
    follower = Replica.from_genesis(space.replica.genesis)
    for data in _run(space, plan):
        follower.receive(data)
    assert statebytes.encode_state(follower.state) == statebytes.encode_state(space.state)
    assert follower.hash() == space.replica.hash()
    joiner = Replica.from_snapshot(space.replica.snapshot(_authority(space)), space.replica.room_id)
    assert joiner.hash() == space.replica.hash()


def _authority(space: Space) -> object:
    return next(p for p in PEOPLE if p.node_id == space.state.authority)


def _member_replica(space: Space) -> Replica:
    follower = Replica.from_genesis(space.replica.genesis)
    for data in space.updates:
        follower.receive(data)
    return follower


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_an_update_with_any_flipped_byte_is_refused_and_changes_nothing(
    data: st.DataObject,
) -> None:
    space = full_space()
    follower = _member_replica(space)
    good = space.do("lee", ActionKind.RAISE_HAND)
    bad = bytearray(good)
    bad[data.draw(st.integers(0, len(bad) - 1))] ^= data.draw(st.integers(1, 255))
    before = follower.state
    with pytest.raises((WireError, Refused)):
        follower.receive(bytes(bad))
    assert follower.state is before
    follower.receive(good)
    assert follower.hash() == space.replica.hash()


def _forge(space: Space, signer_seed: int, **changes: object) -> bytes:
    """An update for the next seq, altered and signed by ``signer_seed``."""
    state = space.state
    update = Update(
        state.room_id,
        state.epoch,
        state.seq + 1,
        space.replica.hash(),
        space.key("lee"),
        Action(ActionKind.RAISE_HAND),
        b"s" * 32,
    )
    return wire.seal_bytes(person(signer_seed), dataclasses.replace(update, **changes))


@pytest.mark.parametrize(
    ("signer", "changes", "error", "reason"),
    [
        (66, {}, Refused, "not signed by the room's authority"),
        (2, {}, Refused, "not signed by the room's authority"),
        (1, {"seq": 10_000}, OutOfSync, "seq gap"),
        (1, {"epoch": 5}, OutOfSync, "unknown epoch 5"),
        (1, {"prev_hash": b"x" * 32}, OutOfSync, "hash chain mismatch"),
        (1, {"room_id": b"z" * 32}, Refused, "another room"),
        (1, {"actor": person(9).node_id}, Refused, "not a member"),
    ],
)
def test_forged_or_misplaced_updates_are_refused(
    signer: int, changes: dict[str, object], error: type[Exception], reason: str
) -> None:
    space = full_space()
    follower = _member_replica(space)
    before = follower.state
    with pytest.raises(error, match=reason):
        follower.receive(_forge(space, signer, **changes))
    assert follower.state is before


def test_a_replayed_update_is_refused() -> None:
    space = full_space()
    follower = _member_replica(space)
    before = follower.state
    with pytest.raises(Refused, match="replayed seq"):
        follower.receive(space.updates[-1])
    assert follower.state is before


def test_an_update_from_a_stale_epoch_is_refused() -> None:
    space = full_space()
    old = space.do("lee", ActionKind.RAISE_HAND)
    space.do("host", ActionKind.LEAVE)  # hands over to cora: epoch 1
    follower = _member_replica(space)
    before = follower.state
    with pytest.raises(Refused, match="stale epoch 0"):
        follower.receive(old)
    assert follower.state is before


def test_two_contents_for_one_seq_is_equivocation() -> None:
    space = full_space()
    follower = _member_replica(space)
    last = follower.state.seq
    other = Update(
        space.state.room_id,
        0,
        last,
        b"h" * 32,
        space.key("liv"),
        Action(ActionKind.RAISE_HAND),
        b"s" * 32,
    )
    with pytest.raises(Equivocation, match=f"epoch 0 seq {last}") as info:
        follower.receive(wire.seal_bytes(space.host, other))
    assert info.value.first == space.updates[-1]


def test_an_update_the_rules_refuse_is_refused_even_from_the_authority() -> None:
    space = full_space()
    follower = _member_replica(space)
    update = Update(
        space.state.room_id,
        0,
        space.state.seq + 1,
        space.replica.hash(),
        space.key("lee"),
        Action(ActionKind.MUTE, space.key("sam")),
        b"s" * 32,
    )
    with pytest.raises(Refused, match="only the host or a co-host"):
        follower.receive(wire.seal_bytes(space.host, update))


def test_snapshot_of_a_large_room_round_trips() -> None:
    space = full_space()
    for seed in range(20, 120):
        space.people[f"p{seed}"] = person(seed)
        space.do(f"p{seed}", ActionKind.JOIN, text=f"Guest {seed}")
    joiner = Replica.from_snapshot(space.replica.snapshot(space.host))
    assert joiner.state == space.state
    assert len(joiner.state.members) == 107


def test_snapshot_signed_by_a_non_authority_is_refused() -> None:
    space = full_space()
    forged = space.replica.snapshot(person(2))  # cora, a co-host but not the authority
    with pytest.raises(Refused, match="not signed by the authority it names"):
        Replica.from_snapshot(forged)


def test_snapshot_for_another_room_is_refused() -> None:
    space = full_space()
    with pytest.raises(Refused, match="snapshot of another room"):
        Replica.from_snapshot(space.replica.snapshot(space.host), b"q" * 32)  # type: ignore[arg-type]


def test_snapshot_with_a_non_canonical_or_inconsistent_state_is_refused() -> None:
    space = full_space()
    cora = space.key("cora")
    # A state that makes a listener a co-host without the role: no action sequence yields it.
    bad = dataclasses.replace(space.state, cohosts=(cora, space.key("lee")))
    snap = wire.Snapshot(
        space.state.room_id, bad.epoch, bad.seq, space.replica.genesis, statebytes.encode_state(bad)
    )
    with pytest.raises(WireError, match="co-host list does not match"):
        Replica.from_snapshot(wire.seal_bytes(space.host, snap))


def test_genesis_binds_room_id_to_host() -> None:
    space = Space.create()
    birth = room.birth_of(space.replica.genesis)
    assert space.state.room_id == room.room_id_from(space.state.host, birth)
    # The same genesis digest under any other key is another room (what an advert checks).
    assert room.room_id_from(person(66).node_id, birth) != space.state.room_id
    # Another key re-signing the same genesis record makes a different room.
    _, genesis = wire.open_signed_bytes(space.replica.genesis, wire.Genesis)
    with pytest.raises(WireError, match="genesis not signed by its host"):
        room.initial_state(wire.seal_bytes(person(66), genesis))


@settings(max_examples=150, deadline=None)
@given(steps)
def test_the_kept_hash_equals_the_hash_of_the_whole_state_after_every_update(plan: list) -> None:
    space = Space.create()
    follower = Replica.from_genesis(space.replica.genesis)
    for data in _run(space, plan):
        follower.receive(data)
        assert follower.hash() == statebytes.state_hash(follower.state)  # kept vs from scratch
    assert space.replica.hash() == statebytes.state_hash(space.state)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.binary(min_size=31, max_size=31), st.text(min_size=1)),
        max_size=40,
    )
)
def test_member_digests_kept_up_to_date_match_a_fresh_count(edits: list) -> None:
    # Keys crowded into three buckets, so that joins, edits and leaves share buckets.
    members: dict = {}
    kept = statebytes.MemberDigests.of(members)
    for bucket, rest, name in edits:
        node = NodeId(bytes([bucket]) + rest)
        if node in members and name.startswith("x"):
            del members[node]
        else:
            members[node] = room.Member(name[:32])
        kept = kept.updated(members, [node])
        assert kept.root() == statebytes.MemberDigests.of(members).root()


def test_two_changed_members_in_one_bucket_are_rehashed_together() -> None:
    # Found by the rules table: the host and Lee share the bucket 0x8a, and the host blocking
    # Lee changes both at once; the bucket must be rehashed once both keys are settled.
    host, lee = NodeId(b"\x8a" + b"\x01" * 31), NodeId(b"\x8a" + b"\x02" * 31)
    members = {host: room.Member("Hana", room.Role.HOST), lee: room.Member("Lee")}
    kept = statebytes.MemberDigests.of(members)
    del members[lee]
    members[host] = room.Member("Hana", room.Role.HOST, muted=True)
    for order in ([host, lee], [lee, host]):
        assert kept.updated(members, order).root() == statebytes.MemberDigests.of(members).root()
