"""Throwaway TLS material for a secured test broker: a CA and a server certificate, as PEM.

Made with the ``cryptography`` package (part of the ``testing`` extra) at test time, so no
keytool, no JKS and no files checked in. The broker reads PEM directly (KIP-651:
``ssl.keystore.type=PEM``); librdkafka clients trust the CA through ``ssl.ca.location``.

Invariants: the server certificate is signed by the CA, names ``localhost`` and
``127.0.0.1`` (so clients that verify host names accept it on loopback), and the private
keys are unencrypted PKCS#8 files readable only by their owner.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.errors import KafkaHarnessError

VALIDITY = dt.timedelta(days=7)
"""Certificates are valid from one hour ago for this long: a test run never outlives it."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one test broker's TLS setup.

    ``ca_path``: the CA certificate (clients' ``ssl.ca.location``, the broker's truststore).
    ``keystore_path``: the server's unencrypted PKCS#8 private key followed by its
    certificate and the CA's, the layout Kafka's PEM keystore expects.
    """

    ca_path: Path
    keystore_path: Path


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the testing extra installs it
        msg = "the secured Kafka harness needs 'cryptography': pip install 'streamer[testing]'"
        raise KafkaHarnessError(msg) from exc


def make_tls_files(directory: Path, *, hosts: tuple[str, ...] = ("localhost",)) -> TlsFiles:
    """Write a fresh CA (``ca.pem``) and server keystore (``server-keystore.pem``) into
    ``directory``. The server certificate names ``hosts`` and ``127.0.0.1``."""
    _require_cryptography()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(server_key, ca_key, ca_cert, hosts)
    pem = serialization.Encoding.PEM
    key_pem = server_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files = TlsFiles(directory / "ca.pem", directory / "server-keystore.pem")
    files.ca_path.write_bytes(ca_cert.public_bytes(pem))
    _write_private(
        files.keystore_path, key_pem + server_cert.public_bytes(pem) + ca_cert.public_bytes(pem)
    )
    return files


def _valid_from() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)


def _ca_certificate(ca_key: Any) -> Any:
    """A self-signed CA that may sign server certificates (and nothing below them)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamer test CA")])
    now = _valid_from()
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )


def _server_certificate(server_key: Any, ca_key: Any, ca_cert: Any, hosts: tuple[str, ...]) -> Any:
    """A server certificate for ``hosts`` and ``127.0.0.1``, signed by the CA."""

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    now = _valid_from()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only (it holds a private key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
