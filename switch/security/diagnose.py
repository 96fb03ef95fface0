"""One clear line when a client cannot talk to its broker, instead of aiokafka's
"Unable to bootstrap from [...]": is the broker there, does it speak TLS when we do
not (or the reverse), does it trust-chain to our CA, does it accept our password?"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from switch.settings import KafkaSettings

PROBE_S = 5.0


def _where(kafka: KafkaSettings) -> tuple[str, int]:
    first = kafka.bootstrap_servers.split(",")[0]
    host, _, port = first.rpartition(":")
    return host.strip("[]"), int(port)


async def _speaks_tls(host: str, port: int) -> bool | None:
    """True: a TLS handshake succeeds (certificate not checked); False: it fails; None:
    nothing listens there."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_S)
    except (OSError, TimeoutError):
        return None
    w.close()
    try:
        _, w = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), PROBE_S)
    except (OSError, TimeoutError, ssl.SSLError):
        return False
    w.close()
    return True


async def diagnose(kafka: KafkaSettings) -> str:
    """Why this client cannot use its broker, as one line that says what to do."""
    host, port = _where(kafka)
    addr = f"{host}:{port}"
    tls = await _speaks_tls(host, port)
    if tls is None:
        return (f"nothing answers at {addr}: start the broker (`switch broker start`, or "
                "`switch up`), or set KAFKA_BOOTSTRAP_SERVERS / --bootstrap-servers")
    wants_tls = kafka.security_protocol.endswith("SSL")
    if tls and not wants_tls:
        return (f"the broker at {addr} requires TLS and SASL (a secured switch-sim broker): run "
                "with its --home, or set SWITCH_SECURITY_DIR=<its home>/security (or "
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL with KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD "
                "and KAFKA_SSL_CAFILE)")
    if not tls and wants_tls:
        return (f"the broker at {addr} does not speak TLS: it runs plaintext (started by an "
                "older version of switch-sim or with --insecure); restart it secured with "
                "`switch broker stop` and `switch broker start`, or connect with "
                "SWITCH_INSECURE=1")
    from aiokafka.conn import create_conn

    kw: dict[str, Any] = kafka.client_kwargs()
    kw.pop("bootstrap_servers", None)
    try:
        conn = await asyncio.wait_for(create_conn(host, port, request_timeout_ms=int(
            PROBE_S * 1000), **kw), PROBE_S * 2)
    except ssl.SSLCertVerificationError as exc:
        return (f"the certificate of the broker at {addr} is not trusted ({exc.verify_message}):"
                f" KAFKA_SSL_CAFILE={kafka.ssl_cafile} is not the CA of that broker")
    except Exception as exc:
        text = str(exc)
        if "uthentication" in text or "SASL" in text or "credentials" in text:
            user = kafka.sasl_username
            where = ("KAFKA_SASL_PASSWORD" + (f" or the password in {kafka.security_dir}/users/"
                                              f"{user}.json" if kafka.security_dir else ""))
            hint = (f", or run `switch agency add {user[len('agency-'):]}` again to reset it"
                    if user and user.startswith("agency-") else "")
            return f"authentication failed for user {user} at {addr}: check {where}{hint}"
        return f"cannot connect to the broker at {addr}: {type(exc).__name__}: {text}"
    conn.close()
    return (f"the broker at {addr} accepts this client ({kafka.security_protocol}, user "
            f"{kafka.sasl_username}); the failure was elsewhere")


def explain(exc: BaseException, kafka: KafkaSettings) -> str | None:
    """The one line for an aiokafka error that reached the command line, or None."""
    from aiokafka.errors import (
        ClusterAuthorizationFailedError,
        GroupAuthorizationFailedError,
        KafkaConnectionError,
        TopicAuthorizationFailedError,
        TransactionalIdAuthorizationFailed,
    )

    if isinstance(exc, KafkaConnectionError):
        try:
            return asyncio.run(diagnose(kafka))
        except Exception as inner:
            return f"cannot connect to {kafka.bootstrap_servers}: {exc} ({inner})"
    if isinstance(exc, TopicAuthorizationFailedError | GroupAuthorizationFailedError
                  | TransactionalIdAuthorizationFailed | ClusterAuthorizationFailedError):
        return (f"not authorized: user {kafka.sasl_username} may not do this "
                f"({type(exc).__name__}: {exc}); an agency may write only its own requests "
                "topic and read only its own replies topic (docs/SECURITY.md)")
    return None
