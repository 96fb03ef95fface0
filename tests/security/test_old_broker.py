"""A broker or broker data left by an older (plaintext) version: one line saying what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from switch.errors import BrokerError
from switch.kafka.localbroker import LocalBroker
from switch.settings import Settings


def _fake_running(home: Path, **extra: object) -> None:
    run = home / "broker"
    run.mkdir(parents=True)
    # This test's own process stands in for the JVM: alive, so the state counts as running.
    (run / "state.json").write_text(json.dumps(
        {"pid": os.getpid(), "port": 1, "controller_port": 2, "started": 0, **extra}))


def test_a_running_broker_of_an_older_version_is_named(tmp_path: Path) -> None:
    _fake_running(tmp_path)  # an older version wrote no "security"
    broker = LocalBroker(tmp_path, preferred_port=None, secure=True,
                         security_dir=tmp_path / "security")
    with pytest.raises(BrokerError, match=r"is plaintext: started by an older version .*"
                       r"`switch broker stop`.*--insecure"):
        broker.start(timeout=1, progress=False)


def test_insecure_start_refuses_a_secured_broker(tmp_path: Path) -> None:
    _fake_running(tmp_path, security="SASL_SSL")
    broker = LocalBroker(tmp_path, preferred_port=None, secure=False)
    with pytest.raises(BrokerError, match="is secured"):
        broker.start(timeout=1, progress=False)


def test_data_formatted_without_users_is_named(tmp_path: Path) -> None:
    data = tmp_path / "broker" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=abc\n")
    broker = LocalBroker(tmp_path, preferred_port=None, secure=True,
                         security_dir=tmp_path / "security")
    with pytest.raises(BrokerError, match=r"made without users .* --insecure .* remove"):
        broker.start(timeout=1, progress=False)


def test_clients_follow_the_local_brokers_security(tmp_path: Path) -> None:
    """Against the home's own broker, clients use what it runs; against another broker named
    by KAFKA_BOOTSTRAP_SERVERS alone, plaintext (the contract's default)."""
    _fake_running(tmp_path)
    assert Settings.from_env({}, home=tmp_path).kafka.security_protocol == "PLAINTEXT"
    (tmp_path / "broker" / "state.json").unlink()
    _fake_running_secured = {"pid": os.getpid(), "port": 1, "controller_port": 2,
                             "security": "SASL_SSL"}
    (tmp_path / "broker" / "state.json").write_text(json.dumps(_fake_running_secured))
    users = tmp_path / "security" / "users"
    users.mkdir(parents=True)
    (users / "operator.json").write_text(json.dumps({"username": "operator", "password": "pw"}))
    (users / "router.json").write_text(json.dumps({"username": "router", "password": "rpw"}))
    s = Settings.from_env({}, home=tmp_path)
    assert s.kafka.security_protocol == "SASL_SSL" and s.kafka.sasl_username == "operator"
    assert s.kafka.ssl_cafile == str(tmp_path / "security" / "ca.pem")
    assert s.as_principal("router").kafka.sasl_password == "rpw"
    other = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}, home=tmp_path)
    assert other.kafka.security_protocol == "PLAINTEXT"
    assert Settings.from_env({"SWITCH_INSECURE": "1"}, home=tmp_path).kafka.security_protocol \
        == "PLAINTEXT"
    with pytest.raises(Exception, match="switch agency add NOPE"):
        Settings.from_env({}, home=tmp_path, agency="NOPE")


@pytest.mark.kafka
@pytest.mark.timeout(240)
async def test_a_secured_client_on_a_plaintext_broker_fails_fast(tmp_path: Path) -> None:
    """A broker of an older version (plaintext) and a client of this one: one line, no hang."""
    import asyncio

    from aiokafka.errors import KafkaConnectionError

    from switch.kafka.clients import make_producer
    from switch.security.diagnose import diagnose

    old = LocalBroker(tmp_path / "old", preferred_port=None, secure=False)
    state = await asyncio.to_thread(old.start, progress=False)
    try:
        sec = tmp_path / "sec"
        from switch.security.broker import prepare

        prepare(sec)
        client = Settings.from_env({"SWITCH_SECURITY_DIR": str(sec)}, home=tmp_path / "c",
                                   bootstrap_servers=state.bootstrap)
        assert client.kafka.security_protocol == "SASL_SSL"
        producer = make_producer(client)
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
        assert asyncio.get_running_loop().time() - t0 < 20
        line = await diagnose(client.kafka)
        assert "does not speak TLS" in line and "older version" in line
    finally:
        await asyncio.to_thread(old.stop)
