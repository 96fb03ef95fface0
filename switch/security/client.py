"""Client-side security: which principal a process is, from the security folder.

`Settings.from_env` calls `resolve()`; everything else gets its clients from
`switch/kafka/clients.py`, so these options are set in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from switch.errors import ConfigError
from switch.security import users


def security_dir(home: Path, env: Mapping[str, str]) -> Path:
    raw = env.get("SWITCH_SECURITY_DIR")
    return Path(raw).expanduser() if raw else home / "security"


def insecure(env: Mapping[str, str]) -> bool:
    return env.get("SWITCH_INSECURE", "").strip().lower() in ("1", "true", "yes", "on")


def broker_security(home: Path) -> str | None:
    """The security of the local broker of `home` as its state file records it: "SASL_SSL",
    "PLAINTEXT" (also for a state written by an older version), or None (no state)."""
    import json

    try:
        data = json.loads((home / "broker" / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("security", "PLAINTEXT"))


def principal_name(env: Mapping[str, str], principal: str | None = None) -> str:
    if principal:
        return principal
    return env.get("KAFKA_SASL_USERNAME") or env.get("SWITCH_PRINCIPAL") or users.OPERATOR


def load_credentials(folder: Path, username: str, env: Mapping[str, str]) -> users.Credentials:
    password = env.get("KAFKA_SASL_PASSWORD")
    if password and env.get("KAFKA_SASL_USERNAME", username) == username:
        return users.Credentials(username, password)
    creds = users.load(folder, username)
    if creds is None:
        hint = (f"run `switch agency add {username[len(users.AGENCY_PREFIX):]}`"
                if username.startswith(users.AGENCY_PREFIX) else
                "start the local broker once (`switch broker start`) to create it")
        raise ConfigError(
            f"no credentials for user {username} in {folder / 'users'}: set "
            f"KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or {hint}")
    return creds


def admin_client(bootstrap: str, folder: Path, username: str) -> AIOKafkaAdminClient:
    from aiokafka.helpers import create_ssl_context

    creds = load_credentials(folder, username, {})
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
        sasl_mechanism=creds.mechanism, sasl_plain_username=creds.username,
        sasl_plain_password=creds.password,
        ssl_context=create_ssl_context(cafile=str(folder / "ca.pem")),
        request_timeout_ms=30_000, client_id="switch-admin",
    )
