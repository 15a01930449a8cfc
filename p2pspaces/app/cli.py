"""The ``p2pspaces`` command: thin click commands that parse, then call the node."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from pathlib import Path

import click

from p2pspaces import __version__
from p2pspaces.app.console import run as headless_run
from p2pspaces.app.demo import demo_clip, run_demo
from p2pspaces.app.rooms import browse_rooms
from p2pspaces.app.words import room_line
from p2pspaces.audio.devices import (
    AudioUnavailable,
    MicSource,
    Sink,
    Source,
    SourceError,
    default_devices,
    list_devices,
    open_input,
    open_output,
)
from p2pspaces.audio.engine import FrameLog
from p2pspaces.audio.processing import (
    ProcessingSettings,
    ProcessingUnavailable,
    with_voice_processing,
)
from p2pspaces.core.errors import IdentityError
from p2pspaces.core.identity import short_fingerprint
from p2pspaces.core.relays import DIRECT_LISTENERS
from p2pspaces.core.settings import Switch
from p2pspaces.net import ice
from p2pspaces.net.ice import NoUsableAddress, choose_addresses
from p2pspaces.node import Node
from p2pspaces.node.config import Faults, NodeConfig
from p2pspaces.node.dialer import address_problem
from p2pspaces.node.home import load_or_create, resolve_home
from p2pspaces.web.service import WebService
from p2pspaces.web.settings import WebSettings

HOME_OPTION = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for this node's identity and data "
    "(default: $P2PSPACES_HOME, else the user config folder).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="p2pspaces")
def main() -> None:
    """Serverless audio rooms for a local network."""


@main.command("id")
@HOME_OPTION
@click.option("--short", is_flag=True, help="Print only the short form used in room lists.")
def identity_command(home: Path | None, short: bool) -> None:
    """Print this node's fingerprint (making its identity on first use)."""
    folder = resolve_home(home)
    try:
        identity = load_or_create(folder)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(short_fingerprint(identity.node_id) if short else identity.fingerprint)


INTERFACE_OPTION = click.option(
    "--interface",
    metavar="ADDR",
    default=None,
    help="Use only this local IPv4 address for mDNS and audio (laptops have several adapters).",
)


def _default_name() -> str:
    return (os.environ.get("USER") or socket.gethostname() or "guest")[:32]


@main.command("start")
@click.option("--name", default=None, help="Your display name (default: your user name).")
@HOME_OPTION
@INTERFACE_OPTION
@click.option("--host", "host_title", metavar="TITLE", default=None, help="Host a new Space.")
@click.option(
    "--join",
    "join_ref",
    metavar="ROOM",
    default=None,
    help="Join a Space by room id, unique id prefix, or exact title.",
)
@click.option(
    "--max-speakers",
    default=10,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Speakers allowed beside the host and co-hosts (when hosting).",
)
@click.option(
    "--input",
    "input_spec",
    metavar="SRC",
    default=None,
    help="mic[:DEVICE], file:PATH[?loop], tone[:HZ] or none (default: mic if there is one).",
)
@click.option(
    "--output",
    "output_spec",
    metavar="DST",
    default=None,
    help="speaker[:DEVICE], file:PATH (a WAV of what you hear) or none (default: speaker).",
)
@click.option(
    "--process",
    type=click.Choice([str(switch) for switch in Switch]),
    default=str(Switch.AUTO),
    show_default=True,
    help="Voice processing of the input (echo cancellation, noise suppression, automatic "
    "gain): auto does it for microphones, not for files and tones.",
)
@click.option(
    "--headphones",
    is_flag=True,
    help="You wear headphones: no echo cancellation (nothing comes back from speakers).",
)
@click.option(
    "--drop-audio",
    type=click.FloatRange(0, 0.5),
    default=0.0,
    hidden=True,
    help="Fault injection for tests: drop this fraction of incoming audio packets.",
)
@click.option(
    "--jitter-audio",
    type=click.FloatRange(0, 500),
    default=0.0,
    hidden=True,
    help="Fault injection for tests: delay each incoming audio packet by a random 0..MS ms.",
)
@click.option(
    "--frame-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    hidden=True,
    help="For benchmarks: write per-frame send and playout times (JSON) here on exit.",
)
@click.option(
    "--plain",
    is_flag=True,
    help="Line by line (screen readers, simple terminals): sentences out, commands in.",
)
@click.option(
    "--headless",
    is_flag=True,
    help="No UI: JSON events on stdout, JSON commands on stdin (docs/headless.md).",
)
@click.option(
    "--web/--no-web",
    "web",
    default=None,
    help="Serve the room to phones' browsers (default: while you host or co-host).",
)
@click.option(
    "--web-port",
    type=click.IntRange(0, 65535),
    default=8480,
    show_default=True,
    help="The browser page's HTTP port (HTTPS is on --web-https-port); 0: any free port.",
)
@click.option(
    "--web-https-port",
    type=click.IntRange(0, 65535),
    default=8443,
    show_default=True,
    help="The secure page's port (browsers give the microphone only to HTTPS pages).",
)
@click.option(
    "--max-guests",
    type=click.IntRange(1, 500),
    default=30,
    show_default=True,
    help="Browser guests this node serves at most (others are sent to other nodes).",
)
@click.option(
    "--guest-grace",
    type=click.FloatRange(0.5, 600),
    default=20.0,
    hidden=True,
    help="Seconds a browser guest whose page went away keeps its place.",
)
@click.option(
    "--relay/--no-relay",
    default=True,
    show_default=True,
    help="In a large room, pass the speakers on to a few other listeners when asked "
    "(--no-relay: a laptop on battery or a weak link).",
)
@click.option(
    "--direct-listeners",
    type=click.IntRange(1, 10_000),
    default=DIRECT_LISTENERS,
    show_default=True,
    help="While you host: listeners who hear each speaker straight; the rest hear through "
    "relays (listeners who pass the speakers on).",
)
@click.option("-v", "--verbose", count=True, help="Log more to stderr (-vv for debug).")
def start_command(
    name: str | None,
    home: Path | None,
    interface: str | None,
    host_title: str | None,
    join_ref: str | None,
    max_speakers: int,
    input_spec: str | None,
    output_spec: str | None,
    process: str,
    headphones: bool,
    drop_audio: float,
    jitter_audio: float,
    frame_log: Path | None,
    plain: bool,
    headless: bool,
    web: bool | None,
    web_port: int,
    web_https_port: int,
    max_guests: int,
    guest_grace: float,
    relay: bool,
    direct_listeners: int,
    verbose: int,
) -> None:
    """Run a node: find Spaces on this network, host one or join one.

    At a terminal this opens the app (F1 there shows every key); --plain prints sentences
    line by line; --headless speaks JSON.  JOIN can be a title, a room id (prefix) or the
    ADDR:PORT shown on the host's screen (for networks where Spaces do not show up).
    """
    if host_title is not None and join_ref is not None:
        raise click.UsageError("--host and --join cannot be used together")
    if plain and headless:
        raise click.UsageError("--plain and --headless cannot be used together")
    problem = address_problem(join_ref) if join_ref is not None else None
    if problem is not None:
        raise click.UsageError(problem)
    app = not (plain or headless) and sys.stdin.isatty() and sys.stdout.isatty()
    folder = resolve_home(home)
    # People read the app and plain mode: sentences on screen, log lines in the log file.
    _configure_logging(verbose, None if headless else folder / LOG_FILE)
    source, sink, why = _open_audio(input_spec, output_spec)
    source, sink, unprocessed = _processing(source, sink, Switch(process), headphones)
    why = why or unprocessed
    if why is not None and not app:
        click.echo(f"p2pspaces: {why}", err=True)
    mode = Switch.AUTO if web is None else (Switch.ON if web else Switch.OFF)
    settings = WebSettings(mode, web_port, web_https_port, max_guests, guest_grace)
    try:
        config = NodeConfig(
            name or _default_name(),
            interface,
            faults=Faults(drop=drop_audio, jitter_ms=jitter_audio),
            recordings=folder / "recordings",
            state_dir=folder,
            relay=relay,
            direct_listeners=direct_listeners,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    frames = FrameLog() if frame_log is not None else None
    node = _make_node(folder, config, source, sink, frames)
    if settings.mode is not Switch.OFF:
        node.services.append(WebService(node, folder, settings))
    if app:
        from p2pspaces.app.tui.app import run as app_run  # noqa: PLC0415 - Textual loads slowly

        status = asyncio.run(
            app_run(
                node,
                host_title=host_title,
                join_ref=join_ref,
                max_speakers=max_speakers,
                notices=(why,) if why is not None else (),
            )
        )
    else:
        status = asyncio.run(
            headless_run(
                node,
                headless=headless,
                host_title=host_title,
                join_ref=join_ref,
                max_speakers=max_speakers,
                read_stdin=True,
            )
        )
    if frame_log is not None and frames is not None:
        frame_log.write_text(json.dumps({"sent": frames.sent, "ticks": frames.ticks}))
    sys.exit(status)


def _open_audio(input_spec: str | None, output_spec: str | None) -> tuple[Source, Sink, str | None]:
    """Open the chosen input and output; without a choice, the devices if there are any (and
    why not, if not)."""
    why = None
    if input_spec is None or output_spec is None:
        default_in, default_out, why = default_devices()
        input_spec = input_spec or default_in
        output_spec = output_spec or default_out
    try:
        return open_input(input_spec), open_output(output_spec), why
    except (SourceError, AudioUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


def _processing(
    source: Source, sink: Sink, process: Switch, headphones: bool
) -> tuple[Source, Sink, str | None]:
    """The input cleaned by voice processing (auto: a microphone's, not a file's or a tone's),
    with what is played as the echo reference; or, if it cannot run, the input as it is and
    why."""
    wanted = process is Switch.ON or (process is Switch.AUTO and isinstance(source, MicSource))
    if not wanted:
        return source, sink, None
    try:
        processed, reference, _ = with_voice_processing(
            source, sink, ProcessingSettings(headphones=headphones)
        )
    except ProcessingUnavailable as exc:
        return source, sink, f"the microphone is sent as it is: {exc}"
    return processed, reference, None


def _make_node(
    folder: Path, config: NodeConfig, source: Source, sink: Sink, frames: FrameLog | None
) -> Node:
    try:
        identity = load_or_create(folder)
        return Node(identity, config, source=source, sink=sink, frame_log=frames)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    except NoUsableAddress as exc:
        raise click.ClickException(str(exc)) from exc


LOG_FILE = "p2pspaces.log"
"""Where the app logs (in the node's home), so that nothing scribbles over its screen."""


def _configure_logging(verbose: int, file: Path | None = None) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    fmt = "%(levelname)s %(name)s: %(message)s"
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            logging.basicConfig(level=level, filename=file, format="%(asctime)s " + fmt)
            return
        except OSError:
            pass  # an unwritable home: the app then logs nothing rather than over its screen
        logging.basicConfig(level=logging.CRITICAL + 1, handlers=[logging.NullHandler()])
        return
    logging.basicConfig(level=level, stream=sys.stderr, format=fmt)


@main.command("rooms")
@INTERFACE_OPTION
@click.option(
    "--wait",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    help="Seconds to listen for adverts.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def rooms_command(interface: str | None, wait: float, as_json: bool) -> None:
    """List the Spaces live on this network now."""
    try:
        addresses = choose_addresses(interface)
    except NoUsableAddress as exc:
        raise click.ClickException(str(exc)) from exc
    found = asyncio.run(browse_rooms(interface, addresses, wait))
    if as_json:
        click.echo(json.dumps([room.as_json() for room in found], ensure_ascii=False))
        return
    if not found:
        click.echo(f"No Spaces found in {wait:g} s.")
        return
    for room in found:
        click.echo(room_line(room, join="p2pspaces start --join"))


@main.command("devices")
def devices_command() -> None:
    """List the audio input and output devices PortAudio can use."""
    try:
        inputs, outputs = list_devices()
    except AudioUnavailable as exc:
        click.echo(f"No audio devices: {exc}")
        click.echo("p2pspaces still runs: use --input file:PATH or tone, --output file:PATH.")
        return
    for title, devices, key in (
        ("Inputs (--input mic:DEVICE)", inputs, "max_input_channels"),
        ("Outputs (--output speaker:DEVICE)", outputs, "max_output_channels"),
    ):
        click.echo(title + ":")
        for device in devices:
            click.echo(f"  {device['index']:3}  {device['name']}  ({device[key]} channels)")
        if not devices:
            click.echo("  none")


@main.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("p2pspaces-demo"),
    show_default=True,
    help="Folder for the listeners' recordings.",
)
@click.option(
    "--clip",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="An audio file for the host to speak (default: a generated voice-like clip).",
)
def demo_command(out_dir: Path, clip: Path | None) -> None:
    """Run a small Space on this machine (no sound card or network needed) and check it."""
    _configure_logging(0)
    try:
        samples = demo_clip(clip)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        ice.choose_addresses("127.0.0.1")
    except NoUsableAddress as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(asyncio.run(run_demo(out_dir, samples, click.echo)))
