"""Self-signed certificates for TLS between the two parties (tests, demos, ad-hoc deployments).

A self-signed certificate is its own CA: give the certificate file to the other party as its
``cafile`` (see :func:`sirnn.transport.tcp.tls_client_context`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _subject_alt_names(common_name: str, ip_addresses) -> x509.SubjectAlternativeName:
    """DNS name ``common_name`` (or IP, if it is one), plus the given IP addresses."""
    names: list[x509.GeneralName] = []
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(common_name)))
    except ValueError:
        names.append(x509.DNSName(common_name))
    for ip in ip_addresses:
        entry = x509.IPAddress(ipaddress.ip_address(ip))
        if entry not in names:
            names.append(entry)
    return x509.SubjectAlternativeName(names)


def _build_certificate(key: ec.EllipticCurvePrivateKey, common_name: str, ip_addresses,
                       days: int) -> x509.Certificate:
    """A self-signed certificate usable both as CA and as server / client certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sirnn")])
    now = datetime.datetime.now(datetime.timezone.utc)
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(_subject_alt_names(common_name, ip_addresses), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_self_signed_cert(directory: str | os.PathLike, common_name: str = "localhost", *,
                          ip_addresses=("127.0.0.1", "::1"), days: int = 365,
                          stem: str | None = None) -> tuple[str, str]:
    """Write a fresh P-256 key and a self-signed certificate for ``common_name`` into ``directory``.

    The certificate also names ``ip_addresses`` (so connecting to 127.0.0.1 passes host-name
    checks). Returns ``(certfile, keyfile)`` as strings; the key file is readable by its owner only.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or common_name.replace("/", "_")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_certificate(key, common_name, ip_addresses, days)
    certfile = directory / f"{stem}.crt"
    keyfile = directory / f"{stem}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return str(certfile), str(keyfile)


__all__ = ["make_self_signed_cert"]
