"""The local broker: clear errors when it cannot start, harmless restarts, nothing left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from switch.errors import BrokerError
from switch.kafka import localbroker
from switch.kafka.localbroker import LocalBroker, _alive


def test_missing_java_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(localbroker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match="Java is not on PATH"):
        localbroker.java_binary()


def test_missing_maven_is_named_when_the_jars_are_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(localbroker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match=r"Maven \('mvn'\) is not on PATH"):
        localbroker.ensure_jars(progress=False)


def test_a_jvm_that_dies_fails_fast_with_its_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_home = tmp_path / "jdk"
    (fake_home / "bin").mkdir(parents=True)
    java = fake_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'Error: this JVM is broken on purpose' >&2\nexit 1\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(fake_home))
    broker = LocalBroker(tmp_path / "home", preferred_port=None)
    with pytest.raises(BrokerError, match="broken on purpose"):
        broker.start(timeout=30, progress=False)
    assert broker.status() is None


@pytest.mark.kafka
def test_start_twice_is_harmless_and_stop_leaves_no_jvm(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "home", preferred_port=None)
    first = broker.start(progress=False)
    try:
        again = broker.start(progress=False)
        assert again.pid == first.pid and again.port == first.port
        assert broker.status() is not None
    finally:
        assert broker.stop() is True
    assert not _alive(first.pid)
    assert broker.status() is None
    assert broker.stop() is False  # stopping a stopped broker is fine too
    assert os.path.exists(tmp_path / "home" / "broker" / "broker.log")
