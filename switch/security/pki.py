"""The local broker's certificate authority and server certificate, made with `cryptography`.

Written once into the security folder (default `<home>/security`): `ca.pem` (the CA's
certificate: what clients trust, `KAFKA_SSL_CAFILE`), `ca-key.pem` (0600), and
`broker.pem` (0600): the broker's unencrypted PKCS#8 private key followed by its
certificate chain, which Kafka reads as a PEM keystore (`ssl.keystore.type=PEM`). The
broker's certificate names 127.0.0.1 and localhost, the addresses the local broker listens
on. Nothing here is hand-rolled: keys, signatures and encodings are `cryptography`'s.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
BROKER_DAYS = 825


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    broker_keystore: Path


def paths(folder: Path) -> Pki:
    return Pki(ca_cert=folder / "ca.pem", ca_key=folder / "ca-key.pem",
               broker_keystore=folder / "broker.pem")


def write_private(path: Path, data: bytes) -> None:
    """Write `data` readable by its owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(IPv4Address(host))
    except ValueError:
        return x509.DNSName(host)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure_pki(folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Pki:
    """The CA and the broker's keystore in `folder`, made the first time only. `hosts`:
    the names and addresses the broker's certificate is valid for."""
    p = paths(folder)
    if p.ca_cert.exists() and p.ca_key.exists() and p.broker_keystore.exists():
        return p
    now = _dt.datetime.now(_dt.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "switch-sim"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "switch-sim local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "switch-sim"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=BROKER_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    write_private(p.ca_key, _pem_key(ca_key))
    write_private(p.broker_keystore, _pem_key(key) + cert.public_bytes(pem) + ca.public_bytes(pem))
    write_private(p.ca_cert, ca.public_bytes(pem))
    os.chmod(p.ca_cert, 0o644)  # a certificate is public
    return p
