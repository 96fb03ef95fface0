"""Principals of the secured switch and where their credentials live.

The security folder (`SWITCH_SECURITY_DIR`, default `<home>/security`) holds one file per
principal, `users/<name>.json` (0600): `{"username", "password", "mechanism"}`. Principals:

- `broker`: the broker itself (its inter-broker connections); `controller`: the broker's
  connection to its KRaft controller (SASL/PLAIN on the controller listener);
- `admin`: the security administrator (a super user: creates users and ACLs);
- one per switch component: `router`, `correlator`, `leads`, `ncic`;
- `operator`: people and tools run by the switch's operators (`switch submit`, `console`,
  `ctl`, `topics`, `replay`, the demo) when no other principal is named;
- one per agency, `agency-<NAME>`, made by `switch agency add NAME`.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from switch.errors import ConfigError
from switch.security.pki import write_private

MECHANISM = "SCRAM-SHA-512"
BROKER = "broker"
CONTROLLER = "controller"
ADMIN = "admin"
OPERATOR = "operator"
COMPONENTS = ("router", "correlator", "leads", "ncic")
# Made when the broker's storage is formatted (StorageTool --add-scram).
FORMAT_USERS = (BROKER, ADMIN, OPERATOR, *COMPONENTS)
AGENCY_PREFIX = "agency-"
AGENCY_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    mechanism: str = MECHANISM


def agency_user(name: str) -> str:
    return AGENCY_PREFIX + name


def check_agency_name(name: str) -> str:
    if not AGENCY_NAME.fullmatch(name):
        raise ConfigError(
            f"agency name {name!r}: 1-40 letters, digits, '_' or '-' (no '.': it is part of "
            "topic names and prefixed ACLs)")
    return name


def user_file(folder: Path, username: str) -> Path:
    return folder / "users" / f"{username}.json"


def new_password() -> str:
    return secrets.token_urlsafe(24)


def store(folder: Path, creds: Credentials) -> Path:
    path = user_file(folder, creds.username)
    write_private(path, json.dumps({"username": creds.username, "password": creds.password,
                                    "mechanism": creds.mechanism}).encode())
    return path


def load(folder: Path, username: str) -> Credentials | None:
    try:
        data = json.loads(user_file(folder, username).read_text())
        return Credentials(str(data["username"]), str(data["password"]),
                           str(data.get("mechanism", MECHANISM)))
    except (OSError, ValueError, KeyError):
        return None


def ensure(folder: Path, username: str) -> Credentials:
    """The stored credentials of `username`, made (with a new random password) if missing."""
    creds = load(folder, username)
    if creds is None:
        creds = Credentials(username, new_password())
        store(folder, creds)
    return creds


def ensure_format_users(folder: Path) -> list[Credentials]:
    return [ensure(folder, name) for name in FORMAT_USERS]


def java_client_properties(folder: Path, creds: Credentials) -> str:
    """A client properties file for Kafka's own command-line tools (kafka-topics.sh etc.)."""
    return (
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={creds.mechanism}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{creds.username}" password="{creds.password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={folder / 'ca.pem'}\n"
    )


async def rotate(settings: object, folder: Path, username: str) -> Credentials:
    """A new random password for `username`, set on the broker as `admin` (effective at once
    for new connections) and then stored. The broker's own users are not rotated here."""
    from aiokafka.admin import AIOKafkaAdminClient

    from switch.security.adminapi import set_scram_password
    from switch.settings import Settings

    assert isinstance(settings, Settings)
    if username in (BROKER, CONTROLLER, ADMIN):
        raise ConfigError(f"{username}: the broker's own and the admin password live in its "
                          "server.properties and storage; re-create the security folder instead")
    admin = settings.as_principal(ADMIN)
    if admin.kafka.sasl_username != ADMIN:
        raise ConfigError(f"no admin credentials in {folder}/users/admin.json")
    creds = Credentials(username, new_password())
    client = AIOKafkaAdminClient(**admin.kafka.client_kwargs(), request_timeout_ms=30_000)
    await client.start()
    try:
        await set_scram_password(client, username, creds.password)
    finally:
        await client.close()
    store(folder, creds)
    return creds
