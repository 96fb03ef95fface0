"""The broker clock estimate (pure): a wall-clock step on this host changes nothing."""

from __future__ import annotations

from switch.kafka.brokerclock import BrokerClock


class Fake:
    def __init__(self, mono: float, wall: float) -> None:
        self.mono, self.wall = mono, wall


def make(f: Fake, window_s: float = 60.0) -> BrokerClock:
    return BrokerClock(window_s=window_s, monotonic=lambda: f.mono, wall=lambda: f.wall)


def test_falls_back_to_the_wall_clock_at_start_then_runs_on_monotonic_time() -> None:
    f = Fake(mono=100.0, wall=1_000_000.0)
    c = make(f)
    assert not c.synced
    assert c.now() == 1_000_000.0
    f.mono += 5
    f.wall -= 3600  # the host's clock steps back an hour: ignored
    assert c.now() == 1_000_005.0


def test_follows_the_broker_not_this_host() -> None:
    f = Fake(mono=100.0, wall=1_000_000.0)
    c = make(f)
    c.observe(2_000_000_000)  # the broker says 2,000,000 s (ms on the wire)
    assert c.synced
    assert c.now() == 2_000_000.0
    f.mono += 2.5
    f.wall += 30  # a step forward of this host's clock: ignored
    assert c.now() == 2_000_002.5


def test_delivery_delay_does_not_pull_the_estimate_back() -> None:
    f = Fake(mono=100.0, wall=0.0)
    c = make(f)
    c.observe(50_000)  # read at once
    f.mono += 1
    c.observe(49_000)  # an old record read a second later (it waited in the topic)
    assert c.now() == 51.0


def test_a_broker_step_back_is_taken_after_two_windows() -> None:
    f = Fake(mono=0.0, wall=0.0)
    c = make(f, window_s=10)
    c.observe(1_000_000)  # 1000 s
    for _ in range(3):
        f.mono += 11
        c.observe(500_000 + int(f.mono * 1000))  # the broker now runs 500 s behind
    assert abs(c.now() - (500 + f.mono)) < 1e-6


def test_ignores_missing_timestamps() -> None:
    f = Fake(mono=0.0, wall=42.0)
    c = make(f)
    c.observe(None)
    c.observe(-1)
    assert not c.synced and c.now() == 42.0
