"""Simulation controls: pure, seeded."""

from __future__ import annotations

import statistics

import pytest

from services.controls import Controls, ControlState
from switch.contract.messages import Control, Latency


def test_defaults_answer_at_once_and_never_reject() -> None:
    c = Controls("LEADS", seed=1)
    assert c.mode == "up"
    assert c.sample_latency_s() == 0.0
    assert not any(c.should_reject() for _ in range(1000))


def test_commands_for_another_system_are_ignored() -> None:
    c = Controls("NCIC")
    assert not c.apply(Control(system="LEADS", mode="down_drop"))
    assert c.mode == "up"
    assert c.apply(Control(system="NCIC", mode="down_forward"))
    assert c.mode == "down_forward"


def test_a_command_changes_only_the_fields_it_names() -> None:
    c = Controls("NCIC")
    c.apply(Control(system="NCIC", latency_ms=Latency(p50=5, p99=50), reject_rate=0.2))
    c.apply(Control(system="NCIC", mode="down_drop"))
    assert c.state == ControlState(mode="down_drop", p50_ms=5, p99_ms=50, reject_rate=0.2)
    c.apply(Control(system="NCIC", reject_rate=7.0))  # clamped
    assert c.state.reject_rate == 1.0


def test_latency_fits_the_two_percentiles() -> None:
    c = Controls("LEADS", seed=7)
    c.apply(Control(system="LEADS", latency_ms=Latency(p50=20, p99=200)))
    samples = sorted(c.sample_latency_s() * 1000 for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(20, rel=0.08)
    assert samples[int(0.99 * len(samples))] == pytest.approx(200, rel=0.2)
    assert max(samples) <= 2000  # capped at 10 x p99


def test_equal_percentiles_give_a_constant_latency() -> None:
    c = Controls("LEADS", seed=7)
    c.apply(Control(system="LEADS", latency_ms=Latency(p50=30, p99=30)))
    assert {c.sample_latency_s() for _ in range(10)} == {0.03}


def test_same_seed_same_draws() -> None:
    def draws(seed: int) -> list[float]:
        c = Controls("LEADS", seed=seed)
        c.apply(Control(system="LEADS", latency_ms=Latency(p50=10, p99=100), reject_rate=0.5))
        return [c.sample_latency_s() + c.should_reject() for _ in range(100)]

    assert draws(3) == draws(3) != draws(4)


def test_reject_rate() -> None:
    c = Controls("LEADS", seed=2)
    c.apply(Control(system="LEADS", reject_rate=0.3))
    share = sum(c.should_reject() for _ in range(10_000)) / 10_000
    assert share == pytest.approx(0.3, abs=0.02)
    c.apply(Control(system="LEADS", reject_rate=1.0))
    assert all(c.should_reject() for _ in range(100))
