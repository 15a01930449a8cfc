"""The home folder: where a node keeps its identity, the room it hosts, and its recordings.

The identity is an Ed25519 key in ``identity.key`` (PEM, mode 0600, written with ``O_EXCL``); a
corrupt or unreadable key file raises :class:`IdentityError` naming it and is never overwritten.

``--home``, else ``$P2PSPACES_HOME``, else the platform's user configuration folder.  A host
notes the room it hosts here (``hosting.json``), so that after a crash the same ``start --host
TITLE`` finds the room its co-host kept going, rejoins and reclaims it (docs/DESIGN.md section 3);
leaving or ending the room forgets it.  If that note cannot be written, the user is told once:
a crash could then not be recovered from.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from p2pspaces.core.errors import IdentityError
from p2pspaces.core.events import Ended, Event, Joined, Left, Out, StateChanged
from p2pspaces.core.identity import Identity, NodeId
from p2pspaces.core.wire import ActionKind

log = logging.getLogger(__name__)

ENV_HOME = "P2PSPACES_HOME"
HOSTING_FILE = "hosting.json"
KEY_FILE = "identity.key"


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


def load_or_create(home: Path) -> Identity:
    """Load the identity kept in ``home``, creating the folder and a new key on first use.

    A key file that exists but cannot be read or parsed raises :class:`IdentityError` naming
    it; it is never overwritten.
    """
    path = home / KEY_FILE
    if path.exists():
        return _load(path)
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise IdentityError(f"cannot create the home folder {home}: {exc.strerror}") from exc
    identity = Identity.generate()
    _store(path, identity)
    return identity


def _load(path: Path) -> Identity:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"cannot read the key file {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(
            f"the key file {path} is corrupt (not an unencrypted PEM Ed25519 key); "
            "move it away to make a new identity"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"the key file {path} does not hold an Ed25519 key")
    return Identity(key)


def _store(path: Path, identity: Identity) -> None:
    pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: if another process made the key between our check and now, we fail loudly
        # rather than overwrite an identity that may already be in use.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    except OSError as exc:
        raise IdentityError(f"cannot write the key file {path}: {exc.strerror}") from exc


class HostedRoom:
    """The room this node hosts, remembered in ``folder`` (nothing is kept without one)."""

    def __init__(self, folder: Path | None) -> None:
        self._path = folder / HOSTING_FILE if folder is not None else None
        self.warning: str | None = None
        """Set (once) when the note could not be written: say so to the user."""

    def follow(self, event: Event, me: NodeId) -> str | None:
        """Keep the record true to the room's news: a room we host (or renamed, so that a
        crash after it still takes it back) is kept, one we left or that ended is forgotten.
        Returns a warning if the record could not be written."""
        if isinstance(event, Joined) and event.host:
            return self.remember(event.room, event.title)
        if isinstance(event, Ended) or (isinstance(event, Left) and event.how is Out.LEFT):
            self.forget(event.room)
        elif isinstance(event, StateChanged) and event.state.host == me:
            action = event.action
            if action is not None and action.kind is ActionKind.SET_TITLE:
                return self.remember(event.state.room_id, event.state.title)
        return None

    def remember(self, room_id: bytes, title: str) -> str | None:
        """Note the room we now host; returns a warning the first time that fails."""
        if self._path is None:
            return None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._path.write_text(json.dumps({"room": room_id.hex(), "title": title}))
        except OSError as exc:
            if self.warning is not None:
                return None
            self.warning = (
                f"cannot write {self._path} ({exc.strerror or exc}): if this laptop crashes, "
                "running the same command again will not reclaim the room"
            )
            log.warning("%s", self.warning)
            return self.warning
        return None

    def forget(self, room_id: bytes) -> None:
        """Forget the hosted room once it is left or ended (and only that room)."""
        if self._path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self._path.read_text()).get("room") == room_id.hex():
                self._path.unlink()

    def room_titled(self, title: str) -> str | None:
        """The id (hex) of the room we hosted under ``title``, if we remember one."""
        if self._path is None:
            return None
        try:
            saved = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("title") != title:
            return None
        room = saved.get("room")
        return room if isinstance(room, str) else None
