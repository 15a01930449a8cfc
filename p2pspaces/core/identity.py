"""Node identities: an Ed25519 key pair, signatures and human fingerprints (the key file on
disk is :mod:`p2pspaces.node.home`'s).

The raw 32-byte public key is the node's id on the wire.  People see a fingerprint: base32 of
SHA-256 of that key, in groups of four (like a Syncthing device id), with a two-group short form
for lists.  Every signature is made over ``domain + data`` so that a signature made for one
purpose can never be replayed as another (domain separation).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field
from typing import NewType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NodeId = NewType("NodeId", bytes)
"""The raw 32-byte Ed25519 public key of a node."""

NODE_ID_SIZE = 32
SIGNATURE_SIZE = 64
_GROUP = 4
_SHORT_GROUPS = 2


def fingerprint(node_id: bytes) -> str:
    """Return the full human fingerprint of a node id, e.g. ``ABCD-EFGH-...`` (13 groups)."""
    text = base64.b32encode(hashlib.sha256(node_id).digest()).decode().rstrip("=")
    return "-".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def short_fingerprint(node_id: bytes) -> str:
    """Return the short form of the fingerprint used in lists, e.g. ``ABCD-EFGH``."""
    return "-".join(fingerprint(node_id).split("-")[:_SHORT_GROUPS])


def grouped_hex(hex_digest: str) -> str:
    """A hex digest as people compare it: ``AB:CD:...`` (a certificate's fingerprint)."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def verify(node_id: bytes, signature: bytes, domain: bytes, data: bytes) -> bool:
    """Return whether ``signature`` is ``node_id``'s signature over ``domain + data``."""
    if len(node_id) != NODE_ID_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        _public_key(bytes(node_id)).verify(signature, domain + data)
    except (InvalidSignature, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=4096)
def _public_key(node_id: bytes) -> Ed25519PublicKey:
    """A key parsed once: a room's authority signs every update, each member its heartbeats
    (bounded: keys are free to make)."""
    return Ed25519PublicKey.from_public_bytes(node_id)


@dataclass(frozen=True, slots=True)
class Identity:
    """A node's key pair."""

    private_key: Ed25519PrivateKey
    node_id: NodeId = field(init=False)
    """The raw 32-byte public key."""

    def __post_init__(self) -> None:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        object.__setattr__(self, "node_id", NodeId(raw))

    @classmethod
    def generate(cls) -> Identity:
        """Make a fresh key pair (kept in memory only)."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """Rebuild a key pair from its 32-byte private seed (tests, fixtures)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, domain: bytes, data: bytes) -> bytes:
        """Sign ``domain + data``."""
        return self.private_key.sign(domain + data)

    @property
    def fingerprint(self) -> str:
        """The full human fingerprint."""
        return fingerprint(self.node_id)
