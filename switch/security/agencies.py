"""Agencies: a principal each, its own request and reply topics, its ACLs, its ORIs.

`add_agency` (the `switch agency add` command, run as `admin`) sets the agency's SCRAM
password, creates its two topics, grants its ACLs (switch/security/acls.py) and writes its
binding (the ORIs it may send for) to the compacted `<prefix>.agencies` topic, keyed by the
agency's name; the router reads that topic at start and tails it.
"""

from __future__ import annotations

import msgspec

from switch.contract.replies import now_rfc3339
from switch.errors import ConfigError
from switch.security import users
from switch.security.acls import agency_acls
from switch.settings import Settings


class Binding(msgspec.Struct, kw_only=True, frozen=True):
    """One agency: its principal and the ORIs it may send requests for."""

    name: str
    principal: str
    oris: list[str]
    requests: str
    replies: str
    ts: str = ""


binding_decoder = msgspec.json.Decoder(Binding)
ORI_LEN = 9


def parse_ori_list(raw: str | None, name: str) -> list[str]:
    """`--ori-list A,B` (default: the agency's name, when it is itself an ORI)."""
    items = [o.strip().upper() for o in (raw or "").split(",") if o.strip()]
    if not items:
        if len(name) == ORI_LEN and name.isalnum():
            items = [name.upper()]
        else:
            raise ConfigError(f"agency {name}: give its ORIs with --ori-list ORI[,ORI...]")
    for o in items:
        if len(o) != ORI_LEN or not o.isalnum():
            raise ConfigError(f"--ori-list: {o!r} is not an ORI (9 letters and digits)")
    return sorted(set(items))


async def add_agency(
    settings: Settings, name: str, oris: list[str], *, new_password: bool = False
) -> tuple[users.Credentials, Binding]:
    """Create or update agency `name`; returns its credentials and binding. The password is
    kept unless `new_password` (or none is stored yet): then a new one is set at once."""
    from aiokafka.admin import AIOKafkaAdminClient

    from switch.kafka.clients import make_producer
    from switch.kafka.topics import agency_topic_specs, ensure_topics
    from switch.security.adminapi import create_acls, set_scram_password

    users.check_agency_name(name)
    folder = settings.kafka.security_dir
    if not settings.secure or folder is None:
        raise ConfigError(
            "agencies need the secured broker (SASL_SSL with a security folder): start it "
            "without --insecure, or set SWITCH_SECURITY_DIR")
    admin_settings = settings.as_principal(users.ADMIN)
    if admin_settings.kafka.sasl_username != users.ADMIN:
        raise ConfigError(f"no admin credentials in {folder}/users/admin.json")
    from pathlib import Path

    username = users.agency_user(name)
    creds = None if new_password else users.load(Path(folder), username)
    if creds is None:
        creds = users.Credentials(username, users.new_password())
    t = settings.topics
    binding = Binding(name=name, principal=f"User:{username}", oris=oris,
                      requests=t.agency_requests(name), replies=t.agency_replies(name),
                      ts=now_rfc3339())
    admin = AIOKafkaAdminClient(**admin_settings.kafka.client_kwargs(), request_timeout_ms=30_000)
    await admin.start()
    try:
        await set_scram_password(admin, username, creds.password)
        await create_acls(admin, agency_acls(t.prefix, name))
    finally:
        await admin.close()
    users.store(Path(folder), creds)
    await ensure_topics(admin_settings, extra=agency_topic_specs(settings, name))
    producer = make_producer(admin_settings)
    await producer.start()
    try:
        await producer.send_and_wait(t.agencies, msgspec.json.encode(binding), key=name.encode())
    finally:
        await producer.stop()
    return creds, binding
