"""The ``p2pspaces`` command: thin click commands that parse, then call the node."""

from __future__ import annotations

from pathlib import Path

import click

from p2pspaces import __version__
from p2pspaces.core.errors import IdentityError
from p2pspaces.core.identity import load_or_create, short_fingerprint
from p2pspaces.paths import resolve_home

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
