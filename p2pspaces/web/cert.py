"""The web gateway's TLS certificate: self-signed, made once and kept in the node's home.

A phone's browser gives the microphone (and WebCrypto) only to a secure page, and on a LAN with
no internet no public authority can vouch for a laptop's address, so the node signs its own
certificate.  The browser warns once; the node's screen shows the certificate's SHA-256
fingerprint for people who compare it.  The certificate names every address the node serves
on (they are checked each start: a new address makes a new certificate) and lasts ten years.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

CERT_FILE = "web-cert.pem"
KEY_FILE = "web-key.pem"
VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Certificate:
    """The files and the fingerprint people can compare."""

    cert_path: Path
    key_path: Path
    sha256: str
    """Hex SHA-256 of the DER certificate (what a browser's certificate viewer shows)."""
    spki_sha256_b64: str
    """Base64 SHA-256 of the public key (Chromium's --ignore-certificate-errors-spki-list)."""

    def context(self) -> ssl.SSLContext:
        """A server TLS context for this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def load_or_create(folder: Path, addresses: tuple[str, ...], name: str) -> Certificate:
    """The certificate in ``folder`` if it names all of ``addresses``, else a new one."""
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    wanted = {ipaddress.ip_address(a) for a in addresses} | {ipaddress.ip_address("127.0.0.1")}
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        named = set(
            cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.IPAddress)
        )
        if wanted <= named and key_path.exists():
            return _describe(cert, cert_path, key_path)
        log.info("web: the node's addresses changed; making a new certificate")
    except (OSError, ValueError, x509.ExtensionNotFound):
        pass
    return _create(cert_path, key_path, sorted(wanted, key=str), name)


def _create(
    cert_path: Path,
    key_path: Path,
    addresses: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
    name: str,
) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"p2pspaces {name}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    san = [x509.DNSName("localhost"), *(x509.IPAddress(a) for a in addresses)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem_key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return _describe(cert, cert_path, key_path)


def _describe(cert: x509.Certificate, cert_path: Path, key_path: Path) -> Certificate:
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Certificate(
        cert_path,
        key_path,
        hashlib.sha256(der).hexdigest(),
        base64.b64encode(hashlib.sha256(spki).digest()).decode(),
    )
