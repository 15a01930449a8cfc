"""The web gateway is hostile ground: a real node on loopback serving a real aiohttp app, and
pages played by an aiohttp client (the browser's own part is tested with Chromium in e2e)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from p2pspaces.core import wire
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.web.gateway import BINARY_MAX, DOMAIN_WEB, STATIC, WebGateway
from p2pspaces.web.page import in_words
from p2pspaces.web.sdp import without_mdns_candidates

LOOPBACK = "127.0.0.1"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Node, WebGateway]]:
    node = Node(Identity.generate(), NodeConfig("Hana", interface=LOOPBACK))
    await node.start()
    await node.host("Hostile ground")
    gateway = WebGateway(node, tmp_path, http_port=0, https_port=0, max_guests=3)
    await gateway.start(LOOPBACK)
    yield node, gateway
    await gateway.close()
    await node.stop()


async def _messages(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            yield json.loads(message.data)


async def _next(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for message in _messages(ws):
            if message["t"] == kind:
                return message
    raise AssertionError(f"socket closed before {kind}")


async def _hello(ws: aiohttp.ClientWebSocketResponse, key: Identity) -> dict[str, Any]:
    welcome = await _next(ws, "welcome")
    transcript = bytes.fromhex(welcome["challenge"]) + bytes.fromhex(welcome["gateway"])
    sig = key.sign(DOMAIN_WEB, transcript)
    await ws.send_str(json.dumps({"t": "hello", "key": key.node_id.hex(), "sig": sig.hex()}))
    return welcome


def _url(gateway: WebGateway, path: str = "") -> str:
    assert gateway.info is not None
    return gateway.info.http + path


async def test_every_response_carries_a_strict_policy_and_the_page_has_no_inline_code(
    served: tuple[Node, WebGateway],
) -> None:
    _, gateway = served
    async with aiohttp.ClientSession() as http:
        for path in ("", "static/app.js", "static/vendor/noble-ed25519/index.js"):
            async with http.get(_url(gateway, path)) as response:
                assert response.status == 200
                policy = response.headers["Content-Security-Policy"]
                assert "script-src 'self'" in policy and "unsafe-inline" not in policy
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with http.get(_url(gateway, "static/../gateway.py")) as response:
            assert response.status in (403, 404)
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert re.findall(r"\son[a-z]+=|\sstyle=", page) == []
    for licence in ("noble-ed25519", "noble-hashes"):
        assert "MIT License" in (STATIC / "vendor" / licence / "LICENSE").read_text()


async def test_a_page_must_prove_its_key_before_anything_it_signs_is_passed_on(
    served: tuple[Node, WebGateway],
) -> None:
    node, gateway = served
    guest = Identity.generate()
    async with aiohttp.ClientSession() as http, http.ws_connect(_url(gateway, "ws")) as ws:
        welcome = await _next(ws, "welcome")
        room = bytes.fromhex(welcome["room"]["id"])
        join = wire.seal_bytes(
            guest, wire.Request(room, 1, Action(ActionKind.JOIN, node.node_id, "Gus"))
        )  # type: ignore[arg-type]
        await ws.send_bytes(join)  # no hello yet
        assert (await _next(ws, "error"))["reason"] == "not accepted"
        other = Identity.generate()  # a signature by another key over the challenge
        sig = other.sign(DOMAIN_WEB, bytes.fromhex(welcome["challenge"]) + node.node_id)
        await ws.send_str(json.dumps({"t": "hello", "key": guest.node_id.hex(), "sig": sig.hex()}))
        assert (await _next(ws, "error"))["code"] == "bad_hello"
        assert gateway.serving == 0
        assert guest.node_id not in node.replica.state.members  # type: ignore[union-attr]


async def test_a_flooding_or_oversized_page_loses_its_socket_and_no_one_else_does(
    served: tuple[Node, WebGateway],
) -> None:
    node, gateway = served
    calm, noisy, big = Identity.generate(), Identity.generate(), Identity.generate()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(_url(gateway, "ws")) as calm_ws,
        http.ws_connect(_url(gateway, "ws")) as noisy_ws,
        http.ws_connect(_url(gateway, "ws")) as big_ws,
    ):
        welcome = await _hello(calm_ws, calm)
        room = bytes.fromhex(welcome["room"]["id"])
        request = wire.Request(room, 1, Action(ActionKind.JOIN, node.node_id, "Calm"))  # type: ignore[arg-type]
        await calm_ws.send_bytes(wire.seal_bytes(calm, request))
        await _hello(noisy_ws, noisy)
        await _hello(big_ws, big)
        for _ in range(200):
            await noisy_ws.send_str(json.dumps({"t": "nonsense"}))
        closed = await _next(noisy_ws, "closed")
        assert "too many messages" in closed["reason"]
        await big_ws.send_bytes(b"\x00" * (BINARY_MAX + 1))
        assert (await _next(big_ws, "error"))["reason"] == "not accepted"
        await big_ws.send_str("x" * 100_000)  # over the frame cap: aiohttp closes it
        async with asyncio.timeout(10):
            async for _ in _messages(big_ws):
                pass
        assert big_ws.closed
        # Calm is in the room and still served.
        await _next(calm_ws, "state")
        await asyncio.sleep(0.3)
        assert calm.node_id in node.replica.state.members  # type: ignore[union-attr]
        await calm_ws.send_bytes(wire.seal_bytes(calm, wire.Chat(room, 2, "<b>hi</b>")))  # type: ignore[arg-type]
        line = await _next(calm_ws, "chat")
        assert line["text"] == "<b>hi</b>"
        assert set(gateway.guests) == {calm.node_id}


FIREFOX_OFFER = "\r\n".join([
    "v=0", "o=mozilla...THIS_IS_SDPARTA-99.0 1 0 IN IP4 0.0.0.0", "s=-", "t=0 0",
    "a=group:BUNDLE 0", "m=audio 9 UDP/TLS/RTP/SAVPF 109", "c=IN IP4 0.0.0.0",
    "a=candidate:0 1 UDP 2122252543 1416d89b-2e1a-44c2-9217-51f29f42397d.local 40311 typ host",
    "a=candidate:1 1 TCP 2105524479 1416d89b-2e1a-44c2-9217-51f29f42397d.local 9 typ host"
    " tcptype active",
    "a=candidate:2 1 UDP 1 evil.example.local 1 typ host",
    "a=candidate:3 1 UDP 2122187007 10.77.0.3 40312 typ host",
    "a=end-of-candidates", "a=mid:0", "",
])  # fmt: skip


def test_a_pages_hidden_candidates_are_taken_out_to_look_up_and_the_node_keeps_listening() -> None:
    """Firefox ends its offer with end-of-candidates: with its only candidates hidden behind
    mDNS names and taken out, aioice would give up at once (no pair to check) and the guest
    never got audio.  Without the end marker, the page's own checks still reach the node."""
    usable, hidden = without_mdns_candidates(FIREFOX_OFFER)
    assert ".local" not in usable and "a=end-of-candidates" not in usable
    assert "10.77.0.3 40312" in usable and "a=mid:0" in usable
    assert [(c.index, c.host) for c in hidden] == [
        (0, "1416d89b-2e1a-44c2-9217-51f29f42397d.local")
    ] * 2  # a name that is not a browser's uuid is not looked up
    assert hidden[0].at("10.77.0.3") == "candidate:0 1 UDP 2122252543 10.77.0.3 40311 typ host"
    plain = "\r\n".join(["v=0", "m=audio 9 UDP 0", "a=candidate:3 1 UDP 1 10.0.0.1 5 typ host",
                         "a=end-of-candidates", ""])  # fmt: skip
    assert without_mdns_candidates(plain) == (plain, [])  # nothing hidden: nothing changes


def test_a_refusal_reaches_the_page_in_words_not_codec_paths() -> None:
    assert (
        in_words("refused: Request.action: Action.text: control character U+202E in text")
        == "control character U+202E in text"
    )
    assert (
        in_words("Request.action: Action.text: 300 characters, not in 0..100")
        == "300 characters long; the most is 100"
    )
    assert in_words("only the host or a co-host may do this") == (
        "only the host or a co-host may do this"
    )


async def test_a_failing_background_task_is_logged_and_the_gateway_goes_on(
    served: tuple[Node, WebGateway], caplog: pytest.LogCaptureFixture
) -> None:
    _node, gateway = served

    async def broken() -> None:
        raise RuntimeError("a bug in a send")

    gateway._spawn(broken())
    await asyncio.sleep(0.05)
    assert "a background task failed" in caplog.text and "a bug in a send" in caplog.text
    async with aiohttp.ClientSession() as http, http.get(_url(gateway)) as response:
        assert response.status == 200
