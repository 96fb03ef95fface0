"""One frozen settings object, built from the environment and command-line flags.

Every component receives it explicitly; nothing reads the environment elsewhere.
`Settings.from_env()` validates at start-up and raises `ConfigError` with a message
that says which variable is wrong and what it should look like.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from switch.contract.validate import DEFAULT_MAX_BYTES
from switch.errors import ConfigError

DEFAULT_LOCAL_PORT = 19092
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI")


def default_home() -> Path:
    """A per-user data directory (XDG), used when neither SWITCH_HOME nor --home is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "switch-sim"


def default_cache() -> Path:
    """Downloaded artifacts (the Kafka jars), shared between homes."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "switch-sim"


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """Connection settings, passed to every aiokafka client as keyword arguments."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    client_id: str = "switch"
    # The security folder the credentials were taken from (switch/security/users.py), so a
    # component can switch to its own principal (`as_principal`); None when they came
    # from KAFKA_SASL_* alone.
    security_dir: str | None = None

    def as_principal(self, username: str) -> KafkaSettings:
        """These settings as `username` (its stored credentials), when they came from a
        security folder; unchanged otherwise (credentials given by the environment)."""
        if self.security_dir is None or self.sasl_username == username:
            return self
        from switch.security.users import load

        creds = load(Path(self.security_dir), username)
        if creds is None:
            return self
        return replace(self, sasl_username=creds.username, sasl_password=creds.password,
                       sasl_mechanism=creds.mechanism)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
        kw: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "client_id": self.client_id,
        }
        if self.security_protocol.startswith("SASL"):
            kw["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kw["sasl_plain_username"] = self.sasl_username
            kw["sasl_plain_password"] = self.sasl_password
        if self.security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            kw["ssl_context"] = create_ssl_context(
                cafile=self.ssl_cafile, certfile=self.ssl_certfile, keyfile=self.ssl_keyfile
            )
        return kw


@dataclass(frozen=True, kw_only=True)
class TopicSettings:
    """Topic names: public ones from CONTRACT.md, internal ones documented in the README."""

    prefix: str = "switch"
    partitions: int = 3
    replication_factor: int = 1

    @property
    def requests(self) -> str:
        return f"{self.prefix}.requests"

    @property
    def requests_byori(self) -> str:
        """Requests forwarded by a router to the partition of their ORI (internal)."""
        return f"{self.prefix}.requests.byori"

    @property
    def replies(self) -> str:
        return f"{self.prefix}.replies"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq"

    @property
    def audit(self) -> str:
        return f"{self.prefix}.audit"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def responses(self) -> str:
        return f"{self.prefix}.responses"

    @property
    def records(self) -> str:
        return f"{self.prefix}.records"

    @property
    def mids(self) -> str:
        return f"{self.prefix}.mids"

    @property
    def imns(self) -> str:
        return f"{self.prefix}.imns"

    @property
    def correlator(self) -> str:
        """The correlator's changelog (compacted): waiting and finished transactions."""
        return f"{self.prefix}.correlator"

    def leg_requests(self, system: str) -> str:
        return f"{self.prefix}.{system.lower()}.requests"

    def store_changelog(self, system: str) -> str:
        """A service's store changelog (compacted), partition p for leg partition p."""
        return f"{self.prefix}.{system.lower()}.store"

    @property
    def agencies(self) -> str:
        """The ORI binding of each agency principal (compacted; switch/security/agencies.py)."""
        return f"{self.prefix}.agencies"

    def agency_requests(self, name: str) -> str:
        """The request topic only agency `name` may write (its sender is known by ACL)."""
        return f"{self.prefix}.agency.{name}.requests"

    def agency_replies(self, name: str) -> str:
        """The reply topic only agency `name` (and the switch's principals) may read."""
        return f"{self.prefix}.agency.{name}.replies"

    def agency_of(self, topic: str) -> str | None:
        """The agency whose request topic this is, or None."""
        head, tail = f"{self.prefix}.agency.", ".requests"
        if topic.startswith(head) and topic.endswith(tail):
            name = topic[len(head):-len(tail)]
            if name and "." not in name:
                return name
        return None

    @property
    def requests_pattern(self) -> str:
        """Every topic the router reads requests from: the public one, the forwarded one
        and each agency's (a regular expression for a pattern subscription)."""
        p = re.escape(self.prefix)
        return rf"^{p}\.(requests|requests\.byori|agency\.[A-Za-z0-9_-]+\.requests)$"


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """Limits of the image pipeline (DOMAIN.md, 'Image content')."""

    box_width: int = 480
    box_height: int = 600
    max_output_bytes: int = 64 * 1024
    max_input_bytes: int = 10 * 1024 * 1024
    max_input_pixels: int = 40_000_000  # beyond this the header alone says "bomb"
    max_input_side: int = 12_000
    allowed_formats: tuple[str, ...] = ("JPEG", "PNG")
    quality_start: int = 90
    quality_min: int = 30
    max_input_scans: int = 100  # progressive JPEG scans; thousands of tiny ones burn CPU
    # Peak memory a decode may need, estimated from the headers alone (checks.decode_bytes):
    # pixels decoded (after JPEG draft scaling) x bytes per pixel of every copy alive at once
    # while converting to L/RGB. 128 MiB admits a 4000 x 3000 camera JPEG (about 6 MiB at
    # draft scale, 72 MiB even if progressive 4:4:4) and any PNG photo under max_input_bytes
    # (a 10 MiB PNG photo is at most ~6 MP: 24 MiB as RGB, 78 MiB with alpha), and refuses a
    # few-KB 40 MP palette or RGBA PNG (about 560 / 520 MB). With a worker's own ~30 MB it
    # keeps every image worker under 200 MB.
    max_decode_bytes: int = 128 * 1024 * 1024
    # Image worker processes in the router; 0 sizes in the router's own process (blocking its
    # event loop for as long as a photo takes, with no time budget). Two by default, one a
    # core on the two-core machine the targets are set for: the workers are processes the
    # OS schedules beside the event loop, so however busy they are the loop and its Kafka
    # heartbeats keep running; and since every conforming photo is now decoded once, one
    # worker passes ~500 of them a second and two ~680 (bench/bench_images.py), which keeps
    # the 566-673 EIM/s measured in BENCHMARKS.md. Each worker is ~30 MB idle and stays
    # under 200 MB by max_decode_bytes.
    pool_size: int = 2
    # Wall-clock seconds a worker may spend on one image before it is killed and the image
    # refused. The largest image the memory budget admits takes well under 1 s on a free
    # core; 2 s leaves room for a loaded machine and keeps a batch's wait far inside the
    # 10 s transaction deadline. Only enforced with a pool (pool_size > 0).
    time_budget_s: float = 2.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    home: Path
    kafka: KafkaSettings
    topics: TopicSettings = field(default_factory=TopicSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    deadline_s: float = 10.0
    max_request_bytes: int = DEFAULT_MAX_BYTES
    mid_retention_s: float = 24 * 3600.0
    renewal_days: int = 365
    log_level: str = "INFO"
    # How long the broker lets a transaction stay open before aborting it: how long the
    # partitions of an instance killed mid-transaction wait before another can restore them.
    transaction_timeout_s: float = 60.0
    # Prometheus metrics on http://metrics_host:metrics_port/metrics; None: not served.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Acting for this agency (`--agency NAME`, SWITCH_AGENCY): its principal, and its own
    # request and reply topics instead of the public ones.
    agency: str | None = None

    @property
    def requests_topic(self) -> str:
        """Where this process sends requests: its agency's topic, else the public one."""
        return self.topics.agency_requests(self.agency) if self.agency else self.topics.requests

    @property
    def replies_topic(self) -> str:
        """Where this process reads its replies: its agency's topic, else the public one."""
        return self.topics.agency_replies(self.agency) if self.agency else self.topics.replies

    @property
    def reply_prefix(self) -> str:
        return self.topics.replies

    def store_dir(self, system: str) -> Path:
        """Where `system`'s stores live: one file per leg-requests partition."""
        return self.home / "stores" / system.lower()

    def store_path(self, system: str, partition: int) -> Path:
        """The store of the records of `system` whose LNO hashes to `partition`."""
        return self.store_dir(system) / f"p{partition}.sqlite3"

    def store_paths(self, system: str) -> list[Path]:
        """Every partition's store of `system`, in partition order."""
        return [self.store_path(system, p) for p in range(self.topics.partitions)]

    def legacy_store_path(self, system: str) -> Path:
        """Where earlier versions kept a system's one store file (services/stores.py splits it)."""
        return self.home / "stores" / f"{system.lower()}.sqlite3"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def as_principal(self, username: str) -> Settings:
        """See KafkaSettings.as_principal: a component runs as its own principal."""
        kafka = self.kafka.as_principal(username)
        return self if kafka is self.kafka else replace(self, kafka=kafka)

    @property
    def secure(self) -> bool:
        return self.kafka.security_protocol != "PLAINTEXT"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        home: str | Path | None = None,
        bootstrap_servers: str | None = None,
        topic_prefix: str | None = None,
        metrics_port: int | None = None,
        principal: str | None = None,
        agency: str | None = None,
    ) -> Settings:
        """Build and validate settings. Flags (keyword arguments) win over the environment."""
        env = os.environ if env is None else env
        agency = agency or env.get("SWITCH_AGENCY") or None
        if agency:
            from switch.security.users import agency_user, check_agency_name

            principal = principal or agency_user(check_agency_name(agency))
        home_path = Path(home or env.get("SWITCH_HOME") or default_home()).expanduser()
        explicit = bootstrap_servers or env.get("KAFKA_BOOTSTRAP_SERVERS")
        bootstrap = explicit or local_bootstrap(home_path)
        kafka = _kafka_settings(env, home_path, bootstrap, explicit, principal)
        topics = TopicSettings(
            prefix=topic_prefix or env.get("SWITCH_TOPIC_PREFIX", "switch"),
            partitions=_int(env, "SWITCH_PARTITIONS", 3),
        )
        box = env.get("SWITCH_IMAGE_BOX", "480x600")
        m = re.fullmatch(r"(\d+)x(\d+)", box)
        if not m:
            raise ConfigError(f"SWITCH_IMAGE_BOX={box!r}: expected WIDTHxHEIGHT, e.g. 480x600")
        images = ImageSettings(
            box_width=int(m.group(1)),
            box_height=int(m.group(2)),
            max_output_bytes=_int(env, "SWITCH_IMAGE_MAX_BYTES", 64 * 1024),
            pool_size=_int(env, "SWITCH_IMAGE_POOL", 2),
            max_decode_bytes=_int(env, "SWITCH_IMAGE_MAX_DECODE_BYTES", 128 * 1024 * 1024),
            time_budget_s=_float(env, "SWITCH_IMAGE_TIME_BUDGET_S", 2.0),
        )
        settings = cls(
            home=home_path,
            kafka=kafka,
            topics=topics,
            images=images,
            deadline_s=_float(env, "SWITCH_DEADLINE_S", 10.0),
            max_request_bytes=_int(env, "SWITCH_MAX_REQUEST_BYTES", DEFAULT_MAX_BYTES),
            log_level=env.get("SWITCH_LOG_LEVEL", "INFO").upper(),
            transaction_timeout_s=_float(env, "SWITCH_TRANSACTION_TIMEOUT_S", 60.0),
            # 0 or unset: off (see README, "Metrics").
            metrics_port=(metrics_port if metrics_port is not None
                          else _int(env, "SWITCH_METRICS_PORT", 0)) or None,
            metrics_host=env.get("SWITCH_METRICS_HOST") or "127.0.0.1",
            agency=agency,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        k = self.kafka
        if not re.fullmatch(r"[^\s,]+:\d+(,[^\s,]+:\d+)*", k.bootstrap_servers):
            raise ConfigError(
                f"KAFKA_BOOTSTRAP_SERVERS={k.bootstrap_servers!r}: expected host:port[,host:port...]"
            )
        if k.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={k.security_protocol!r}: one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if k.security_protocol.startswith("SASL"):
            if (k.sasl_mechanism or "PLAIN") not in SASL_MECHANISMS:
                raise ConfigError(
                    f"KAFKA_SASL_MECHANISM={k.sasl_mechanism!r}: one of {', '.join(SASL_MECHANISMS)}"
                )
            if (k.sasl_mechanism or "PLAIN").startswith(("PLAIN", "SCRAM")) and not (
                k.sasl_username and k.sasl_password
            ):
                raise ConfigError("SASL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", self.topics.prefix):
            raise ConfigError(
                f"SWITCH_TOPIC_PREFIX={self.topics.prefix!r}: letters, digits, '.', '_', '-' only"
            )
        if not 1 <= self.transaction_timeout_s <= 900:
            raise ConfigError(
                f"SWITCH_TRANSACTION_TIMEOUT_S={self.transaction_timeout_s}: between 1 and 900")
        if not 1 <= self.topics.partitions <= 10:
            # The shared IMN is `I` + the requests partition as one digit + that
            # partition's 8-digit sequence (switch/router/imns.py).
            raise ConfigError(f"SWITCH_PARTITIONS={self.topics.partitions}: between 1 and 10")
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise ConfigError(f"SWITCH_METRICS_PORT={self.metrics_port}: 0 (off) or 1-65535")
        if self.deadline_s <= 0:
            raise ConfigError(f"SWITCH_DEADLINE_S={self.deadline_s}: must be positive")
        if self.max_request_bytes < 1024:
            raise ConfigError(f"SWITCH_MAX_REQUEST_BYTES={self.max_request_bytes}: at least 1024")
        im = self.images
        if im.box_width < 16 or im.box_height < 16:
            raise ConfigError("SWITCH_IMAGE_BOX: each side at least 16 pixels")
        if im.max_output_bytes < 4096:
            raise ConfigError("SWITCH_IMAGE_MAX_BYTES: at least 4096")
        if im.pool_size < 0:
            raise ConfigError("SWITCH_IMAGE_POOL: 0 or more")
        if im.max_decode_bytes < 16 * 1024 * 1024:
            raise ConfigError("SWITCH_IMAGE_MAX_DECODE_BYTES: at least 16777216 (16 MiB)")
        if not 0 < im.time_budget_s <= 60:
            raise ConfigError(f"SWITCH_IMAGE_TIME_BUDGET_S={im.time_budget_s}: between 0 and 60 seconds")


def _kafka_settings(
    env: Mapping[str, str], home: Path, bootstrap: str, explicit: str | None,
    principal: str | None,
) -> KafkaSettings:
    """Security, in this order: KAFKA_SECURITY_PROTOCOL and friends when set (any broker);
    plaintext when SWITCH_INSECURE=1; SASL_SSL with the credentials of a security folder
    (SWITCH_SECURITY_DIR, or `<home>/security` for the local broker of the home when it
    runs secured); else plaintext (a broker named by KAFKA_BOOTSTRAP_SERVERS alone)."""
    from switch.security import client as sec

    if env.get("KAFKA_SECURITY_PROTOCOL"):
        return KafkaSettings(
            bootstrap_servers=bootstrap,
            security_protocol=env["KAFKA_SECURITY_PROTOCOL"].upper(),
            sasl_mechanism=env.get("KAFKA_SASL_MECHANISM"),
            sasl_username=principal or env.get("KAFKA_SASL_USERNAME"),
            sasl_password=env.get("KAFKA_SASL_PASSWORD"),
            ssl_cafile=env.get("KAFKA_SSL_CAFILE"),
            ssl_certfile=env.get("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=env.get("KAFKA_SSL_KEYFILE"),
        )
    if sec.insecure(env):
        return KafkaSettings(bootstrap_servers=bootstrap)
    folder = sec.security_dir(home, env)
    if env.get("SWITCH_SECURITY_DIR"):
        use = True
    elif explicit and explicit != local_bootstrap(home):
        use = False  # somebody else's broker: plaintext unless told (KAFKA_SECURITY_PROTOCOL)
    else:
        state = sec.broker_security(home)
        use = state == "SASL_SSL" or (state is None and (folder / "ca.pem").exists())
    if not use:
        return KafkaSettings(bootstrap_servers=bootstrap)
    creds = sec.load_credentials(folder, sec.principal_name(env, principal), env)
    return KafkaSettings(
        bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
        sasl_mechanism=creds.mechanism, sasl_username=creds.username,
        sasl_password=creds.password, ssl_cafile=str(folder / "ca.pem"),
        security_dir=str(folder),
    )


def local_bootstrap(home: Path) -> str:
    """The local broker's address as recorded in its run folder, else its default port."""
    state = home / "broker" / "state.json"
    try:
        import json

        data = json.loads(state.read_text())
        return f"127.0.0.1:{int(data['port'])}"
    except (OSError, ValueError, KeyError):
        return f"127.0.0.1:{DEFAULT_LOCAL_PORT}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
