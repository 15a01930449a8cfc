"""Signaling: a small authenticated TCP endpoint that carries the SDP offer and answer.

Frames are a 4-byte big-endian length and a wire message, at most :data:`FRAME_MAX` bytes, the
size checked before anything is read.  Each side first sends :class:`~p2pspaces.core.wire.Hello`
(its key, its name, a fresh 32-byte challenge), then a
:class:`~p2pspaces.core.wire.ChallengeResponse`: its signature over
``DOMAIN_HANDSHAKE + peer_challenge + own_challenge + own_key + peer_key``.  Both challenges are in
every signature, so a response recorded on one connection is useless on another.  After the
handshake the session carries signed offer and answer (see :mod:`p2pspaces.net.mesh`) and closes.

A misbehaving client loses its own connection and nothing else: every read has a timeout, the
whole session has a deadline, at most :data:`MAX_HANDSHAKES` sessions run at once, and each
address gets :data:`ATTEMPTS_PER_ADDRESS` connections per :data:`ATTEMPT_WINDOW` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from p2pspaces.core import wire
from p2pspaces.core.codec import R
from p2pspaces.core.errors import PeerError, WireError
from p2pspaces.core.identity import Identity, NodeId, short_fingerprint, verify
from p2pspaces.core.limits import BucketsByKey
from p2pspaces.core.wire import ChallengeResponse, Hello

log = logging.getLogger(__name__)

FRAME_MAX = 64 * 1024
READ_TIMEOUT = 5.0
SESSION_TIMEOUT = 15.0
MAX_HANDSHAKES = 32
ATTEMPTS_PER_ADDRESS = 20
ATTEMPT_WINDOW = 10.0
_HEADER = struct.Struct(">I")


@dataclass(slots=True)
class Session:
    """An authenticated signaling connection to one peer."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    identity: Identity
    peer: Hello

    @property
    def peer_id(self) -> NodeId:
        """The peer's verified key."""
        return self.peer.node_id

    async def send(self, data: bytes) -> None:
        """Send one frame."""
        await write_frame(self.writer, data)

    async def receive_signed(self, cls: type[R]) -> R:
        """Read one envelope signed by the peer and holding a ``cls`` (or its refusal)."""
        data = await read_frame(self.reader)
        message = wire.decode(data)
        if isinstance(message, wire.Error):
            raise PeerError(f"refused by the peer: {message.reason}")
        envelope = wire.expect(message, wire.Signed)
        return wire.expect(wire.open_signed(envelope, self.peer_id), cls)

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """Read one frame within :data:`READ_TIMEOUT`, refusing an oversize one before reading it."""
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            header = await reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > FRAME_MAX:
                raise WireError(f"frame of {size} bytes exceeds the {FRAME_MAX}-byte cap")
            return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise PeerError("the connection was closed mid-handshake") from None


async def write_frame(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write one frame."""
    if len(data) > FRAME_MAX:
        raise ValueError(f"frame of {len(data)} bytes exceeds the {FRAME_MAX}-byte cap")
    writer.write(_HEADER.pack(len(data)) + data)
    await writer.drain()


def _transcript(first_nonce: bytes, second_nonce: bytes, signer: bytes, other: bytes) -> bytes:
    return first_nonce + second_nonce + signer + other


async def handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, identity: Identity, name: str
) -> Session:
    """Run the mutual challenge-response; return the session or raise :class:`PeerError`."""
    challenge = os.urandom(32)
    await write_frame(writer, wire.encode(Hello(identity.node_id, name, challenge)))
    peer = wire.expect(wire.decode(await read_frame(reader)), Hello)
    if peer.node_id == identity.node_id:
        raise PeerError("connected to ourselves")
    proof = identity.sign(
        wire.DOMAIN_HANDSHAKE, _transcript(peer.nonce, challenge, identity.node_id, peer.node_id)
    )
    await write_frame(writer, wire.encode(ChallengeResponse(proof)))
    response = wire.expect(wire.decode(await read_frame(reader)), ChallengeResponse)
    expected = _transcript(challenge, peer.nonce, peer.node_id, identity.node_id)
    if not verify(peer.node_id, response.signature, wire.DOMAIN_HANDSHAKE, expected):
        raise WireError("handshake signature does not match the peer's key")
    return Session(reader, writer, identity, peer)


async def connect(
    host: str, port: int, identity: Identity, name: str, source: str | None = None
) -> Session:
    """Open a signaling session to ``host:port``, from the local address ``source`` if given
    (else the one the routing table picks)."""
    local = (source, 0) if source is not None else None
    async with asyncio.timeout(READ_TIMEOUT):
        reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    try:
        return await handshake(reader, writer, identity, name)
    except BaseException:
        writer.close()
        raise


SessionHandler = Callable[[Session], Awaitable[None]]


class SignalingServer:
    """Accepts signaling sessions and hands each authenticated one to ``on_session``."""

    def __init__(
        self,
        identity: Identity,
        name: str,
        on_session: SessionHandler,
        clock: Callable[[], float],
        max_handshakes: int = MAX_HANDSHAKES,
    ) -> None:
        self._identity = identity
        self._name = name
        self._on_session = on_session
        self._clock = clock
        self._slots = max_handshakes
        self._attempts = BucketsByKey(ATTEMPTS_PER_ADDRESS / ATTEMPT_WINDOW, ATTEMPTS_PER_ADDRESS)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.refused = 0

    async def start(self, host: str, port: int = 0) -> int:
        """Listen on ``host:port`` (0: any free port); return the port."""
        self._server = await asyncio.start_server(self._accept, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end the sessions in progress."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        address = (writer.get_extra_info("peername") or ("?",))[0]
        if not self._attempts.take(address, self._clock()):
            self._refuse(address, "too many connection attempts")
            return
        if self._slots <= 0:
            self._refuse(address, "too many handshakes in progress")
            return
        self._slots -= 1
        try:
            async with asyncio.timeout(SESSION_TIMEOUT):
                session = await handshake(reader, writer, self._identity, self._name)
                await self._on_session(session)
        except PeerError as exc:
            self._refuse(address, exc.reason)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            self._refuse(address, f"connection failed ({type(exc).__name__})")
        finally:
            self._slots += 1

    def _refuse(self, address: str, reason: str) -> None:
        self.refused += 1
        log.info("signaling: refused %s: %s", address, reason)


def describe(session: Session) -> str:
    """A short label of a session's peer for logs."""
    return f"{session.peer.name!r} ({short_fingerprint(session.peer_id)})"
