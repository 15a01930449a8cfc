"""PNG screenshots of the browser guest's page at phone size, for docs/ and the README: joining,
listening in a busy room, and on stage over HTTPS.  Real nodes on loopback, a real Chromium
(Debian's, through Playwright), a fake microphone; nothing staged but the people's choices.

    python3 scripts/web_screenshots.py [--out docs/screens]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from tempfile import TemporaryDirectory

from playwright.async_api import ViewportSize, async_playwright

from p2pspaces.audio.devices import open_input
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig
from p2pspaces.web.gateway import WebGateway

PHONE: ViewportSize = {"width": 390, "height": 844}
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--ignore-certificate-errors",
]


async def wait_member(node: Node, name: str, within: float = 20) -> bytes:
    async with asyncio.timeout(within):
        while True:
            replica = node.replica
            if replica is not None:
                for key, member in replica.state.members.items():
                    if member.name == name:
                        return key
            await asyncio.sleep(0.05)


async def main(out: Path) -> None:
    logging.basicConfig(level=logging.ERROR)
    nodes: list[Node] = []

    async def node(name: str, source: str = "none", home: Path | None = None) -> Node:
        made = Node(
            Identity.generate(),
            NodeConfig(name, interface="127.0.0.1", state_dir=home),
            source=open_input(source),
        )
        await made.start()
        nodes.append(made)
        return made

    with TemporaryDirectory() as home:
        try:
            hana = await node("Hana", "tone:440", Path(home))
            await hana.host("Friday demos")
            gateway = WebGateway(hana, Path(home), http_port=0, https_port=0)
            info = await gateway.start("127.0.0.1")
            people = {name: await node(name) for name in ("Cody", "Vic", "Ann", "Bob", "Tia")}
            for member in people.values():
                await member.join(hana.join_addresses[0])
            for name in ("Cody", "Vic"):
                key = await wait_member(hana, name)
                await hana.request(Action(ActionKind.INVITE_SPEAKER, key))  # type: ignore[arg-type]
                await asyncio.sleep(0.5)
                await people[name].request(Action(ActionKind.ACCEPT_INVITE))
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = await browser.new_page(viewport=PHONE, device_scale_factor=2)
                await page.goto(info.http)
                await page.wait_for_selector("#join:not([hidden])")
                await page.fill("#name", "Gus")
                await page.screenshot(path=str(out / "phone-join.png"))
                await page.click("#join-button")
                await page.wait_for_selector("#room:not([hidden])")
                await people["Bob"].chat("Can you share the slides afterwards?")
                await people["Cody"].chat("Yes, they go in the meetup channel tonight")
                await page.fill("#chat-input", "Hello from my phone!")
                await page.click("#chat-form button")
                await people["Tia"].react("clap")
                await page.click("text=Raise hand")
                await asyncio.sleep(1.5)
                await page.screenshot(path=str(out / "phone-room.png"))
                gus = await wait_member(hana, "Gus")
                await hana.request(Action(ActionKind.ACCEPT_HAND, gus))  # type: ignore[arg-type]
                await page.wait_for_selector("text=Open the secure page to speak")
                await page.click("text=Open the secure page to speak")
                await page.click("#secure-note-go")  # past the word on the certificate
                await page.wait_for_selector("text=You are on stage")
                await asyncio.sleep(1.5)
                await page.screenshot(path=str(out / "phone-stage.png"))
                await browser.close()
            await gateway.close()
        finally:
            await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
    print(f"screenshots in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    folder = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(folder))
