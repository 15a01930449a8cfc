"""SVG screenshots of the terminal app for docs/ and the README: the lobby and a busy room, at
80x24 and 120x40, from real nodes on loopback (nothing staged but the people's choices).

    python3 scripts/screenshots.py [--out docs/screens]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from textual.pilot import Pilot

from p2pspaces.app.tui.app import SpacesApp
from p2pspaces.app.tui.room import RoomScreen
from p2pspaces.audio.devices import open_input
from p2pspaces.core.identity import Identity
from p2pspaces.core.wire import Action, ActionKind
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

SIZES = ((80, 24), (120, 40))


async def until(pilot: Pilot[Any], done: Callable[[], bool], within: float = 20) -> None:
    async with asyncio.timeout(within):
        while not done():
            await pilot.pause(0.05)


async def settle(nodes: list[Node], room: bytes, members: int) -> None:
    def done() -> bool:
        return all(
            n.replica is not None
            and n.replica.room_id == room
            and len(n.replica.state.members) >= members
            for n in nodes
        )

    for _ in range(400):
        if done():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the room did not settle")


async def main(out: Path) -> None:
    logging.basicConfig(level=logging.ERROR)
    with TemporaryDirectory() as home:
        nodes: list[Node] = []

        async def node(name: str, tone: bool = False, state_dir: Path | None = None) -> Node:
            made = Node(
                Identity.generate(),
                NodeConfig(name, interface="127.0.0.1", state_dir=state_dir),
                source=open_input("tone:330" if tone else "none"),
            )
            await made.start()
            nodes.append(made)
            return made

        try:
            # Other Spaces on the network, for the lobby.
            rust = await node("Mika")
            await rust.host("Rust meetup: async in practice")
            quiet = await node("Sam")
            await quiet.host("Quiet room (no talking)")

            # The busy room, seen by its host in the app.
            hana = Node(
                Identity.generate(),
                NodeConfig("Hana", interface="127.0.0.1", state_dir=Path(home) / "hana"),
                source=open_input("tone:440"),
            )
            nodes.append(hana)
            app = SpacesApp(hana)
            async with app.run_test(size=SIZES[0]) as pilot:
                await until(pilot, lambda: hana.port != 0)
                await until(pilot, lambda: len(hana.room_list()) >= 2)
                for width, height in SIZES:
                    await pilot.resize_terminal(width, height)
                    await pilot.pause(0.5)
                    app.save_screenshot(f"lobby-{width}x{height}.svg", str(out))
                await pilot.resize_terminal(*SIZES[0])
                room_id = await hana.host("Friday demos")
                await until(pilot, lambda: isinstance(app.screen, RoomScreen))
                people = {
                    name: await node(name, tone=name in ("Cody", "Vic"))
                    for name in ("Cody", "Vic", "Ann", "Bob", "Tia", "Lee", "Noor")
                }
                for member in people.values():
                    await member.join(hana.join_addresses[0])
                await settle([hana, *people.values()], room_id, 8)
                for name in ("Cody", "Vic"):
                    await hana.request(Action(ActionKind.INVITE_SPEAKER, people[name].node_id))
                    await settle([people[name]], room_id, 8)
                    await asyncio.sleep(0.3)
                    await people[name].request(Action(ActionKind.ACCEPT_INVITE))
                    await asyncio.sleep(0.3)
                await hana.request(Action(ActionKind.ADD_COHOST, people["Cody"].node_id))
                for name in ("Ann", "Tia"):
                    await people[name].request(Action(ActionKind.RAISE_HAND))
                await hana.request(Action(ActionKind.SET_RECORDING, flag=True))
                await asyncio.sleep(0.5)
                await people["Bob"].chat("Can you share the slides afterwards?")
                await people["Cody"].chat("Yes, they go in the meetup channel tonight")
                await people["Ann"].chat("Question about the demo when you have a minute")
                await asyncio.sleep(0.5)
                await people["Lee"].react("clap")
                await people["Vic"].react("fire")
                await pilot.pause(1.5)
                for width, height in SIZES:
                    await pilot.resize_terminal(width, height)
                    await pilot.pause(0.5)
                    app.save_screenshot(f"room-{width}x{height}.svg", str(out))
        finally:
            await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
    print(f"screenshots in {out}/")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screens"))
    folder = parser.parse_args().out
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(folder))
