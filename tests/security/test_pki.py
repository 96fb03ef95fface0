"""The generated CA and broker certificate (no broker needed)."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from switch.security import users
from switch.security.broker import listener_properties
from switch.security.pki import ensure_pki


def test_ca_and_broker_certificate(tmp_path: Path) -> None:
    p = ensure_pki(tmp_path / "sec")
    assert stat.S_IMODE((tmp_path / "sec").stat().st_mode) == 0o700
    for private in (p.ca_key, p.broker_keystore):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(p.ca_cert.read_bytes())
    chain = x509.load_pem_x509_certificates(p.broker_keystore.read_bytes())
    leaf = chain[0]
    assert b"BEGIN PRIVATE KEY" in p.broker_keystore.read_bytes()  # PKCS#8, unencrypted
    leaf.verify_directly_issued_by(ca)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    before = p.ca_cert.read_bytes()
    ensure_pki(tmp_path / "sec")
    assert p.ca_cert.read_bytes() == before  # made once


def test_broker_listeners_and_authorizer(tmp_path: Path) -> None:
    props = listener_properties(9092, 9093, tmp_path / "sec")
    assert "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,CLIENT:SASL_SSL" in props
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "super.users=User:broker;User:controller;User:admin\n" in props
    for name in users.FORMAT_USERS:
        creds = users.load(tmp_path / "sec", name)
        assert creds is not None and len(creds.password) >= 32
        f = users.user_file(tmp_path / "sec", name)
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
