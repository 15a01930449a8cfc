"""A control message that arrives before our side has registered the link is kept, not lost.

aiortc hands a message to the channel's listeners as soon as SCTP has it; on a link that delays
and reorders packets, a peer's first message (its join) can come before the channel's ``open``
event has reached the mesh.  Found behind the impairing cable (tests/e2e/impair.py): the join was
acknowledged by SCTP, dropped, and the joiner was counted silent."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection

from p2pspaces.net import ice
from p2pspaces.net.mesh import Early


async def test_messages_before_the_link_is_registered_are_kept_in_order_and_capped() -> None:
    ice.use_addresses(("127.0.0.1",))
    joiner = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    authority = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sending = joiner.createDataChannel("control", negotiated=True, id=0, ordered=True)
    receiving = authority.createDataChannel("control", negotiated=True, id=0, ordered=True)
    early = Early(receiving)
    opened = asyncio.Event()
    sending.on("open", opened.set)
    try:
        await joiner.setLocalDescription(await joiner.createOffer())
        await authority.setRemoteDescription(joiner.localDescription)
        await authority.setLocalDescription(await authority.createAnswer())
        await joiner.setRemoteDescription(authority.localDescription)
        await asyncio.wait_for(opened.wait(), 20)
        for index in range(Early.CAP + 3):
            sending.send(f"join {index}".encode())
        async with asyncio.timeout(10):
            while len(early.messages) + early.dropped < Early.CAP + 3:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        # Nothing else listened meanwhile: without Early every one of them was gone.
        kept = early.release()
        assert kept == [f"join {i}".encode() for i in range(Early.CAP)]
        assert early.dropped == 3
        later: list[object] = []
        receiving.on("message", later.append)
        sending.send(b"after")
        async with asyncio.timeout(10):
            while not later:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert later == [b"after"] and len(early.messages) == Early.CAP  # no longer keeping
    finally:
        await joiner.close()
        await authority.close()
