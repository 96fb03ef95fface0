"""Shared fixtures. The broker is real: KAFKA_BOOTSTRAP_SERVERS if set; else a Kafka
container where a Docker engine answers; else the project's local broker (started once
per test session in a temporary home, stopped at the end). Each test gets its own topic
prefix and home, so tests never see each other's data.

The local broker runs secured, as the project ships it (SASL_SSL, SCRAM-SHA-512, ACLs):
its security folder is exported as SWITCH_SECURITY_DIR, so every client of the session
(and every `switch` child process) authenticates, each component as its own principal and
everything else as `operator`. SWITCH_INSECURE=1 runs the whole session plaintext.

A Kafka test is never skipped in CI: a skip of a test marked `kafka` becomes a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from switch.kafka.localbroker import LocalBroker
from switch.kafka.topics import ensure_topics
from switch.settings import Settings

KAFKA_IMAGE = "apache/kafka:4.1.0"


def _docker_available() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False  # no engine to ask; skip the client's slow, noisy probe
    try:
        import docker  # testcontainers' dependency

        client = docker.from_env(timeout=2)
        try:
            client.ping()
        finally:
            client.close()
        return True
    except Exception:
        return False


def _start_container() -> tuple[object, str]:
    """An `apache/kafka` container in KRaft mode via testcontainers' generic container."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = 9092
    c = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(port, None)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_MESSAGE_MAX_BYTES", str(8 * 1024 * 1024))
        .with_env("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m")
    )
    c.start()
    host_port = c.get_exposed_port(port)
    # The advertised listener must name the mapped port, so set it after start via config.
    wait_for_logs(c, "Kafka Server started", timeout=90)
    return c, f"{c.get_container_host_ip()}:{host_port}"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    if _docker_available():
        container, bootstrap = _start_container()
        try:
            yield bootstrap
        finally:
            container.stop()  # type: ignore[attr-defined]
        return
    # Outside pytest's numbered temporary folders: those are shared by every pytest session
    # of this user, and a session keeps only the last three, so a long run beside others
    # could lose its broker's data and credentials in the middle.
    home = Path(tempfile.mkdtemp(prefix="switch-test-broker-"))
    if not os.environ.get("SWITCH_INSECURE"):
        # Shared by every broker a test starts (test_broker_restart...): one CA, one set of
        # users, so the session's clients talk to all of them.
        os.environ["SWITCH_SECURITY_DIR"] = str(home / "security")
    broker = LocalBroker(home, preferred_port=None)
    state = broker.start(progress=True)  # raises BrokerError naming the cause
    try:
        yield state.bootstrap
    finally:
        # Its data is thrown away: no clean shutdown to wait for (it took ~22 s at the end
        # of every run; the clean stop has tests of its own in tests/kafka).
        broker.kill()
        shutil.rmtree(home, ignore_errors=True)


def make_settings(bootstrap: str, home: Path, **env: str) -> Settings:
    base = {k: v for k, v in os.environ.items()
            if k.startswith("KAFKA_") or k in ("SWITCH_SECURITY_DIR", "SWITCH_INSECURE")}
    base.update(env)
    return Settings.from_env(
        base,
        home=home,
        bootstrap_servers=bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str, tmp_path: Path) -> Settings:
    """Settings with a fresh home and topic prefix, every topic created."""
    settings = make_settings(kafka_bootstrap, tmp_path / "home")
    await ensure_topics(settings)
    return settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `reliability_only` belong to `make reliability` (RELIABILITY=long), not to
    `make test`: they are deselected there (not skipped), and the summary says so."""
    from tests.flow.harness import long_run

    if long_run():
        return
    kept = [i for i in items if not i.get_closest_marker("reliability_only")]
    dropped = [i for i in items if i.get_closest_marker("reliability_only")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    expected_failure = hasattr(report, "wasxfail")  # ran, and failed as marked: not a skip
    if report.skipped and not expected_failure and item.get_closest_marker("kafka") \
            and os.environ.get("CI"):
        report.outcome = "failed"
        report.longrepr = f"Kafka test skipped in CI (forbidden): {report.longrepr}"


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The figures of the reliability tests (broker restart, fuzz storm), if any ran."""
    from tests.flow.harness import FIGURES

    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, figures in FIGURES.items():
        terminalreporter.write_line(f"{name}:")
        for k, v in figures.items():
            terminalreporter.write_line(f"  {k:>20}: {v}")
