"""The page speaks the node's wire format: what ``static/wire.js`` signs, run in Node.js, opens
in Python as the message the guest meant (a page on another protocol version could join no
room: every message it sent was refused as malformed)."""

from __future__ import annotations

import json
import shutil
import subprocess

from p2pspaces.core import codec, wire
from p2pspaces.core.identity import Identity
from p2pspaces.web.gateway import STATIC
from p2pspaces.web.protocol import DOMAIN_WEB

from ..needs import unavailable

SEED = bytes(range(32))
ROOM = bytes([7]) * 32

SCRIPT = """
const wire = await import(process.argv[1]);
const [seed, room] = [process.argv[2], Uint8Array.from(Buffer.from(process.argv[3], "hex"))];
const key = await wire.keyFromSeed(seed);
const sealed = [
  wire.request(room, 3, 41, "raise_hand"),
  wire.chat(room, 3, 42, "hello from the page"),
  wire.reaction(room, 3, 43, "👏"),
];
const out = [];
for (const message of sealed) out.push(Buffer.from(await wire.seal(key, message)).toString("hex"));
console.log(JSON.stringify(out));
"""


CONSTANTS = """
const wire = await import(process.argv[1]);
const text = (bytes) => Buffer.from(bytes).toString("latin1");
console.log(JSON.stringify({
  version: wire.PROTOCOL_VERSION, name_max: wire.NAME_MAX, chat_max: wire.CHAT_MAX,
  emoji: wire.EMOJI, message: text(wire.DOMAIN_MESSAGE), web: text(wire.DOMAIN_WEB),
}));
"""


def _run_page(script: str, *args: str) -> str:
    """Run ``script`` in Node.js with the page's wire.js; its output."""
    node = shutil.which("node")
    if node is None:
        unavailable("Node.js is not installed (apt-get install nodejs)")
    result = subprocess.run(
        [
            node,
            "--experimental-default-type=module",
            "--input-type=module",
            "-e",
            script,
            (STATIC / "wire.js").as_uri(),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _page_sealed() -> list[bytes]:
    return [bytes.fromhex(item) for item in json.loads(_run_page(SCRIPT, SEED.hex(), ROOM.hex()))]


def test_the_pages_constants_are_the_nodes() -> None:
    """The page's copies of the room's rules and the protocol's constants: a page whose name
    limit, emoji set or signing domains drifted from the node's would be refused in ways its
    guest could not understand."""
    page = json.loads(_run_page(CONSTANTS))
    assert page == {
        "version": codec.PROTOCOL_VERSION,
        "name_max": wire.NAME_MAX,
        "chat_max": wire.CHAT_MAX,
        "emoji": [str(emoji) for emoji in wire.Emoji],
        "message": wire.DOMAIN_MESSAGE.decode("latin1"),
        "web": DOMAIN_WEB.decode("latin1"),
    }


def test_what_the_page_signs_opens_in_python_as_the_guest_meant() -> None:
    guest = Identity.from_seed(SEED).node_id
    request, chat, reaction = _page_sealed()
    envelope, opened = wire.open_signed_bytes(request, wire.Request, guest)
    assert envelope.signer == guest
    assert (opened.room_id, opened.epoch, opened.req_id) == (ROOM, 3, 41)
    assert opened.action.kind is wire.ActionKind.RAISE_HAND
    _, line = wire.open_signed_bytes(chat, wire.Chat, guest)
    assert (line.epoch, line.chat_id, line.text) == (3, 42, "hello from the page")
    _, clap = wire.open_signed_bytes(reaction, wire.Reaction, guest)
    assert (clap.epoch, clap.reaction_id, clap.emoji) == (3, 43, wire.Emoji.CLAP)
