"""The secured local broker: listeners, SASL, TLS, the authorizer, and its first users.

One client listener, `CLIENT`, speaks SASL_SSL with SCRAM-SHA-512 (TLS from `pki`); the
broker uses it for its own inter-broker requests (transaction markers) as `broker`. The
KRaft `CONTROLLER` listener (127.0.0.1 only) speaks SASL_PLAINTEXT with PLAIN for the
`controller` principal: SCRAM credentials live in the metadata the controller serves, so
Kafka does not allow SCRAM there. Authorisation is Kafka's own `StandardAuthorizer`, no
ACL means no access, and the super users are `broker`, `controller` and `admin`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path

from switch.security import users
from switch.security.pki import Pki, ensure_pki

LISTENER = "CLIENT"


def _jaas_scram(creds: users.Credentials) -> str:
    return ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{creds.username}" password="{creds.password}";')


def prepare(folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Pki:
    """The CA, the broker's keystore and the format-time users, made the first time."""
    pki = ensure_pki(folder, hosts)
    users.ensure_format_users(folder)
    users.ensure(folder, users.CONTROLLER)
    return pki


def format_args(folder: Path) -> list[str]:
    """StorageTool arguments that create the SCRAM users when the storage is formatted."""
    out: list[str] = []
    for name in users.FORMAT_USERS:
        c = users.ensure(folder, name)
        out += ["--add-scram", f"SCRAM-SHA-512=[name={c.username},password={c.password}]"]
    return out


def listener_properties(
    port: int, cport: int, folder: Path, *, bind: str = "127.0.0.1",
    advertise: str = "127.0.0.1", hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> str:
    pki = prepare(folder, hosts)
    broker = users.ensure(folder, users.BROKER)
    ctl = users.ensure(folder, users.CONTROLLER)
    lc = LISTENER.lower()
    plain = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
             f'username="{ctl.username}" password="{ctl.password}" '
             f'user_{ctl.username}="{ctl.password}";')
    supers = ";".join(f"User:{u}" for u in (users.BROKER, users.CONTROLLER, users.ADMIN))
    return f"""\
listeners={LISTENER}://{bind}:{port},CONTROLLER://{bind}:{cport}
advertised.listeners={LISTENER}://{advertise}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name={LISTENER}
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,{LISTENER}:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.{lc}.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.{lc}.scram-sha-512.sasl.jaas.config={_jaas_scram(broker)}
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config={plain}
ssl.keystore.type=PEM
ssl.keystore.location={pki.broker_keystore}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca_cert}
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users={supers}
"""


def answers_tls(port: int, cafile: Path, timeout: float = 1.0) -> bool:
    """True when a TLS handshake with the broker's certificate succeeds on the port and the
    broker answers an ApiVersions request (allowed before SASL authentication)."""
    client = b"probe"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += len(client).to_bytes(2, "big") + client
    msg = len(body).to_bytes(4, "big") + body
    try:
        ctx = ssl.create_default_context(cafile=str(cafile))
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(msg)
            head = s.recv(4)
            if len(head) < 4:
                return False
            resp = s.recv(8)
            return len(resp) >= 6 and resp[:4] == (1).to_bytes(4, "big") and resp[4:6] == b"\0\0"
    except (OSError, ssl.SSLError):
        return False


def apply_trusted_acls(bootstrap: str, folder: Path) -> None:
    """Create the components' and operator's ACLs as `admin` (from a thread of its own, so
    callers inside an event loop can use it too)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(_apply(bootstrap, folder))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=work, name="switch-acls")
    t.start()
    t.join()
    if errors:
        raise errors[0]


async def _apply(bootstrap: str, folder: Path) -> None:
    from switch.security.acls import trusted_acls
    from switch.security.adminapi import create_acls
    from switch.security.client import admin_client

    admin = admin_client(bootstrap, folder, users.ADMIN)
    await admin.start()
    try:
        await create_acls(admin, trusted_acls())
    finally:
        await admin.close()


def write_container_files(
    folder: Path, *, host: str, port: int, cport: int, data_dir: str, owner: int | None = None,
) -> list[Path]:
    """For a broker in a container (docker-compose.yml, the `apache/kafka` image): the same
    listeners, users and authorizer as the local broker, as `server.properties` and a
    `start-kafka.sh` that formats the storage with the SCRAM users and starts Kafka."""
    import os
    import shlex

    from switch.kafka.localbroker import _server_properties
    from switch.security.pki import write_private

    hosts = (host, "localhost", "127.0.0.1")
    listeners = listener_properties(port, cport, folder, bind="0.0.0.0", advertise=host,
                                    hosts=hosts)
    props = _server_properties(port, cport, Path(data_dir), listeners).replace(
        f"1@127.0.0.1:{cport}", f"1@{host}:{cport}")
    write_private(folder / "server.properties", props.encode())
    cluster = folder / "cluster-id"
    if not cluster.exists():
        import base64
        import uuid

        cluster.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    args = " ".join(shlex.quote(a) for a in format_args(folder))
    script = (
        "#!/bin/sh\n# Written by `switch security init`: format with the SCRAM users, then run.\n"
        "set -e\n"
        f"/opt/kafka/bin/kafka-storage.sh format -t \"$(cat {folder}/cluster-id)\" "
        f"-c {folder}/server.properties --ignore-formatted {args}\n"
        f"exec /opt/kafka/bin/kafka-server-start.sh {folder}/server.properties\n"
    )
    write_private(folder / "start-kafka.sh", script.encode())
    os.chmod(folder / "start-kafka.sh", 0o700)
    admin = users.ensure(folder, users.ADMIN)
    write_private(folder / "admin.properties",
                  users.java_client_properties(folder, admin).encode())
    written = sorted(p for p in folder.rglob("*") if p.is_file())
    if owner is not None:  # the image's Kafka runs as its own user
        for p in [folder, *folder.rglob("*")]:
            os.chown(p, owner, owner)
    return written
