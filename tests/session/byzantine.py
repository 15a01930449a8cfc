"""A Byzantine node's tools: messages made as modified code would make them, signed with the
node's own key, past our own records' checks (issue 17)."""

from __future__ import annotations

import dataclasses

from p2pspaces.core import codec, room, statebytes, wire
from p2pspaces.core.identity import Identity
from p2pspaces.core.session import RoomSession


def forged_snapshot(
    forger: RoomSession,
    *,
    epoch: int | None = None,
    title: str = "Taken",
    key: Identity | None = None,
) -> bytes:
    """What a listener makes of the state it holds: itself authority and co-host at a higher
    epoch, the title changed, the host's other members blocked, signed with its own key."""
    replica = forger.replica
    assert replica is not None
    state = replica.state
    signer = key or forger._ctx.identity
    me = signer.node_id
    members = dict(state.members)
    if me in members:
        members[me] = dataclasses.replace(members[me], role=room.Role.COHOST)
    else:
        members[me] = room.Member("Mallory", room.Role.COHOST)
    victims = [n for n, m in members.items() if n not in (me, state.host) and m.role < 2]
    for victim in victims:
        del members[victim]
    fake = dataclasses.replace(
        state,
        epoch=state.epoch + 1 if epoch is None else epoch,
        seq=state.seq + 1,
        authority=me,
        cohosts=(me,),
        title=title,
        members=members,
        blocked=frozenset(victims),
    )
    fields = {
        "room_id": state.room_id,
        "epoch": fake.epoch,
        "seq": fake.seq,
        "genesis": replica.genesis,
        "state": codec.pack(state_fields(fake)),
        "custody": [],
    }
    return sign_raw(signer, "snapshot", fields)


def sign_raw(signer: Identity, kind: str, fields: dict[str, object]) -> bytes:
    """A message as modified code would send it: any values, past our own records' checks."""
    payload = codec.pack({"v": codec.PROTOCOL_VERSION, "t": kind, **fields})
    signature = signer.sign(wire.DOMAIN_MESSAGE, payload)
    return codec.pack(
        {
            "v": codec.PROTOCOL_VERSION,
            "t": "signed",
            "signer": signer.node_id,
            "payload": payload,
            "signature": signature,
        }
    )


def state_fields(state: room.RoomState) -> list[object]:
    return statebytes.canonical_fields(state)
