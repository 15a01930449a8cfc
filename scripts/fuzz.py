"""Fuzz the parsers that face the network and the user: every input either parses or raises the
documented error, nothing else.

    python3 scripts/fuzz.py [--examples 20000] [--target NAME]

Targets (hypothesis-driven: random bytes, and valid inputs with bytes flipped, cut or grown):

* ``wire``: :func:`p2pspaces.core.wire.decode` -> a message or ``WireError``.
* ``signed``: :func:`p2pspaces.core.wire.open_signed_bytes` on (mutated) signed envelopes ->
  a verified message or ``WireError``.
* ``txt``: :func:`p2pspaces.net.discovery.decode_txt` on (mutated) signed TXT records -> an
  advert or ``AdvertError``.
* ``frame``: :func:`p2pspaces.net.signaling.read_frame` on a byte stream -> a frame,
  ``WireError`` (over the cap, refused before reading it) or ``PeerError`` (the peer hung up
  mid-frame).
* ``handshake``: :func:`p2pspaces.net.signaling.handshake` (the mutual challenge-response) fed a
  peer's (mutated) hello and response frames -> a session, ``WireError`` or ``PeerError``.
* ``typed``: :func:`p2pspaces.app.console.typed_command` on typed lines -> a command or
  ``BadCommand``.
* ``headless``: JSON command lines (every command, fields of every type) into a real node on
  loopback, as its stdin reader feeds them: each is carried out or answered with an ``error``
  event (``bad_command``, ``command_failed``), never ``internal_error``, and the reader goes on.

A crash prints the input hypothesis shrank it to; keep it as a regression test in
tests/test_fuzz.py.  tests/test_fuzz.py runs every target briefly in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pspaces.app.console import BadCommand, typed_command
from p2pspaces.app.console import _one_line as one_line
from p2pspaces.core import wire
from p2pspaces.core.errors import PeerError, WireError
from p2pspaces.core.events import ErrorEvent
from p2pspaces.core.identity import Identity
from p2pspaces.core.room import room_id_from
from p2pspaces.net import discovery, signaling
from p2pspaces.net.discovery import AdvertError, RoomAdvert
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

IDENTITY = Identity.from_seed(bytes(range(32)))
BIRTH = bytes(range(32))
ROOM = room_id_from(IDENTITY.node_id, BIRTH)
VALID_MESSAGES = [
    wire.encode(wire.Heartbeat(wire.RoomId(ROOM), 1, 2, bytes(32))),
    wire.encode(wire.Contacts(wire.RoomId(ROOM), (b"x" * 40,))),
    wire.seal_bytes(IDENTITY, wire.Chat(wire.RoomId(ROOM), 3, "hello")),
    wire.seal_bytes(IDENTITY, wire.Contact(wire.RoomId(ROOM), ("10.0.0.1",), 4000)),
    wire.seal_bytes(
        IDENTITY,
        wire.Request(wire.RoomId(ROOM), 1, wire.Action(wire.ActionKind.MUTE, IDENTITY.node_id)),
    ),
]
VALID_TXT = discovery.encode_txt(
    IDENTITY,
    "Hana",
    4000,
    RoomAdvert(ROOM, "Friday demos", 1, 2, IDENTITY.node_id, BIRTH, recording=True),
    7,
)


@st.composite
def mutated(draw: st.DrawFn, valid: list[bytes]) -> bytes:
    """A valid input with a few bytes flipped, some cut off, or junk appended."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        index = draw(st.integers(0, len(data) - 1))
        data[index] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    data = data[:cut] if draw(st.booleans()) else data
    return bytes(data) + draw(st.binary(max_size=8))


BYTES = st.one_of(st.binary(max_size=512), mutated(VALID_MESSAGES))


def _framed(*messages: bytes) -> bytes:
    return b"".join(len(m).to_bytes(4, "big") + m for m in messages)


PEER = Identity.from_seed(bytes(range(1, 33)))
VALID_HANDSHAKES = [
    _framed(
        wire.encode(wire.Hello(PEER.node_id, "Peer", bytes(32))),
        wire.encode(wire.ChallengeResponse(bytes(64))),
    ),
    _framed(wire.encode(wire.Hello(IDENTITY.node_id, "Me again", bytes(32)))),
    _framed(wire.encode(wire.ChallengeResponse(bytes(64)))),
]


class _Sink:
    """Where our side of the handshake writes (nobody reads it)."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


def check_handshake(stream: bytes) -> None:
    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        with contextlib.suppress(WireError, PeerError):
            await signaling.handshake(reader, _Sink(), IDENTITY, "Fuzz")  # type: ignore[arg-type]

    asyncio.run(run())


def check_wire(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.decode(data)


def check_signed(data: bytes) -> None:
    with contextlib.suppress(WireError):
        wire.open_signed_bytes(data, wire.Message)


@st.composite
def txt_records(draw: st.DrawFn) -> dict[str, str]:
    record = dict(VALID_TXT)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*record, "x", "f", "c"]))
        if draw(st.booleans()):
            record[key] = draw(st.text(max_size=40))
        else:
            record.pop(key, None)
    return record


def check_txt(record: dict[str, str], port: int) -> None:
    with contextlib.suppress(AdvertError):
        discovery.decode_txt(record, port)


def check_frame(stream: bytes) -> None:
    async def read() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        with contextlib.suppress(WireError, PeerError):
            await signaling.read_frame(reader)

    asyncio.run(read())


def check_typed(line: str) -> None:
    try:
        command = typed_command(line)
    except BadCommand:
        return
    assert isinstance(command, dict) and isinstance(command.get("cmd"), str)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
COMMANDS = st.fixed_dictionaries(
    {
        "cmd": st.sampled_from(
            [
                "host",
                "join",
                "leave",
                "chat",
                "react",
                "request",
                "rooms",
                "help",
                "state",
                "quit",
                "nope",
            ]
        )
    },
    optional={
        key: VALUES
        for key in ("title", "room", "wait", "text", "emoji", "action", "target", "flag")
    }
    | {"max_speakers": VALUES, "action": st.sampled_from([k.value for k in wire.ActionKind])},
)


class HeadlessTarget:
    """A real node on loopback that JSON command lines are fed to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.node = Node(Identity.generate(), NodeConfig("Fuzz", interface="127.0.0.1"))
        self.loop.run_until_complete(self.node.start())
        self.done = asyncio.Event()

    def check(self, command: dict[str, object]) -> None:
        line = json.dumps(command, allow_nan=True).encode() + b"\n"
        if command.get("cmd") == "join":
            command["wait"] = 0  # no waiting for rooms that are not there
            line = json.dumps(command, allow_nan=True).encode() + b"\n"
        self.loop.run_until_complete(asyncio.wait_for(one_line(self.node, line, self.done), 30))
        while not self.node.events.empty():
            event = self.node.events.get_nowait()
            assert not (isinstance(event, ErrorEvent) and event.code == "internal_error"), command
        if self.node.replica is not None and command.get("cmd") != "leave":
            self.loop.run_until_complete(self.node.leave())

    def close(self) -> None:
        self.loop.run_until_complete(self.node.stop())
        self.loop.run_until_complete(asyncio.sleep(0.2))  # zeroconf's last goodbyes
        self.loop.close()


def check_headless(examples: int) -> None:
    target = HeadlessTarget()
    try:
        fuzz = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        fuzz(given(COMMANDS)(target.check))()
    finally:
        target.close()


def targets(examples: int) -> dict[str, Callable[[], None]]:
    """Each target as a hypothesis test of ``examples`` inputs."""
    fuzz = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    return {
        "wire": fuzz(given(BYTES)(check_wire)),
        "signed": fuzz(given(BYTES)(check_signed)),
        "txt": fuzz(given(txt_records(), st.integers(0, 65535))(check_txt)),
        "frame": fuzz(
            given(st.one_of(st.binary(max_size=64), mutated(VALID_MESSAGES)))(check_frame)
        ),
        "handshake": fuzz(
            given(st.one_of(st.binary(max_size=128), mutated(VALID_HANDSHAKES)))(check_handshake)
        ),
        "headless": lambda: check_headless(examples),
        "typed": fuzz(
            given(st.text(max_size=80).map(lambda t: "/" + t if t[:1] != "/" else t))(check_typed)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--target", choices=sorted(targets(1)), default=None)
    args = parser.parse_args()
    for name, run in targets(args.examples).items():
        if args.target not in (None, name):
            continue
        start = time.monotonic()
        run()
        print(f"{name:9} {args.examples:,} inputs, no crash ({time.monotonic() - start:.1f} s)")


if __name__ == "__main__":
    main()
