"""Where a node keeps its files: ``--home``, else ``$P2PSPACES_HOME``, else the platform's
user configuration folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_HOME = "P2PSPACES_HOME"


def default_home() -> Path:
    """The home folder when none is given on the command line."""
    explicit = os.environ.get(ENV_HOME)
    if explicit:
        return Path(explicit).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "p2pspaces"


def resolve_home(home: Path | None) -> Path:
    """The folder to use: the one given, else the default."""
    return home.expanduser() if home is not None else default_home()
