"""When a manifest was appended, as the correlator counts its deadline from (pure)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from switch.correlator.loop import Correlator
from switch.kafka.brokerclock import BrokerClock
from switch.settings import Settings

NOW = 2_000_000.0


def _correlator(tmp_path: Path) -> Correlator:
    clock = BrokerClock(monotonic=lambda: 100.0, wall=lambda: NOW)  # before any record: NOW
    return Correlator(Settings.from_env({}, home=tmp_path), clock=clock)


def test_log_append_time_counts_as_it_is(tmp_path: Path) -> None:
    c = _correlator(tmp_path)
    rec = SimpleNamespace(timestamp=int((NOW - 5) * 1000), timestamp_type=1)
    assert c._appended(rec) == NOW - 5  # type: ignore[arg-type]
    c.store.close()


def test_create_time_of_a_fast_router_clock_cannot_postpone_a_deadline(tmp_path: Path) -> None:
    c = _correlator(tmp_path)
    ahead = SimpleNamespace(timestamp=int((NOW + 3600) * 1000), timestamp_type=0)
    behind = SimpleNamespace(timestamp=int((NOW - 2) * 1000), timestamp_type=0)
    missing = SimpleNamespace(timestamp=-1, timestamp_type=0)
    assert c._appended(ahead) == NOW  # type: ignore[arg-type]
    assert c._appended(behind) == NOW - 2  # type: ignore[arg-type]
    assert c._appended(missing) == NOW  # type: ignore[arg-type]
    c._observe(ahead)  # type: ignore[arg-type]
    assert not c.clock.synced  # a producer's clock is not the broker's
    c.store.close()
