"""Identities on disk and fingerprints."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from p2pspaces.core.errors import IdentityError
from p2pspaces.core.identity import fingerprint, short_fingerprint, verify
from p2pspaces.node.home import KEY_FILE, load_or_create


def test_identity_is_made_once_and_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = load_or_create(home)
    again = load_or_create(home)
    assert first.node_id == again.node_id
    assert len(first.node_id) == 32
    assert stat.S_IMODE((home / KEY_FILE).stat().st_mode) == 0o600


def test_a_corrupt_key_file_is_an_error_naming_it_and_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(b"not a key")
    with pytest.raises(IdentityError, match=f"the key file {path} is corrupt"):
        load_or_create(tmp_path)
    assert path.read_bytes() == b"not a key"


def test_an_unreadable_key_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).mkdir()
    with pytest.raises(IdentityError, match="cannot read the key file"):
        load_or_create(tmp_path)


def test_fingerprint_shape() -> None:
    key = bytes(range(32))
    full = fingerprint(key)
    groups = full.split("-")
    assert len(groups) == 13 and all(len(g) == 4 for g in groups)
    assert short_fingerprint(key) == "-".join(groups[:2])
    assert fingerprint(bytes(32)) != full


def test_signatures_are_domain_separated(tmp_path: Path) -> None:
    identity = load_or_create(tmp_path)
    signature = identity.sign(b"one\x00", b"data")
    assert verify(identity.node_id, signature, b"one\x00", b"data")
    assert not verify(identity.node_id, signature, b"two\x00", b"data")
    assert not verify(
        identity.node_id, signature[:-1] + bytes([signature[-1] ^ 1]), b"one\x00", b"data"
    )
    assert not verify(b"short", signature, b"one\x00", b"data")
