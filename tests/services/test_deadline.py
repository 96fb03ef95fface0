"""The drop decision of a query leg (pure): broker append time + timeout against the
broker clock's estimate; this host's wall clock, stepped or skewed, changes nothing."""

from __future__ import annotations

import pytest

from services.deadline import CREATE_TIME, LOG_APPEND_TIME, overdue_s
from switch.kafka.brokerclock import BrokerClock

B = 1_800_000_000.0  # the broker's time when the query is appended (epoch seconds)


def overdue(
    append_s: float, now: float, timeout_s: float = 10.0, kind: int = LOG_APPEND_TIME
) -> float | None:
    return overdue_s(append_ms=int(append_s * 1000), timestamp_type=kind,
                     timeout_s=timeout_s, broker_now=now)


def test_past_the_timeout_on_the_broker_clock_and_not_before() -> None:
    assert overdue(B, B) is None
    assert overdue(B, B + 10.0) is None  # exactly at the deadline: still answered
    assert overdue(B, B + 10.5) == pytest.approx(0.5)
    assert overdue(B, B + 3.0, timeout_s=2.0) == pytest.approx(1.0)


def test_a_create_time_record_is_never_dropped() -> None:
    # The producer's wall clock: nothing to compare it with; the correlator has the
    # TIMEOUT covered and counts a late answer.
    assert overdue(B, B + 3600, kind=CREATE_TIME) is None
    assert overdue_s(append_ms=None, timestamp_type=LOG_APPEND_TIME, timeout_s=1, broker_now=B) is None
    assert overdue_s(append_ms=-1, timestamp_type=LOG_APPEND_TIME, timeout_s=1, broker_now=B) is None


class Host:
    """A service host: a monotonic clock and a wall clock `skew` seconds off the broker's."""

    def __init__(self, skew: float) -> None:
        self.mono, self.skew, self.broker = 500.0, skew, B

    def wall(self) -> float:
        return self.broker + self.skew

    def tick(self, s: float) -> None:
        self.mono += s
        self.broker += s

    def clock(self) -> BrokerClock:
        return BrokerClock(monotonic=lambda: self.mono, wall=self.wall)


@pytest.mark.parametrize("skew", [0.0, 30.0, -3600.0])
def test_a_fresh_query_is_answered_whatever_this_hosts_clock_says(skew: float) -> None:
    host = Host(skew)
    clock = host.clock()
    host.tick(0.2)
    append = host.broker
    clock.observe(append * 1000)  # every record read is observed before it is judged
    host.tick(0.05)
    assert overdue(append, clock.now()) is None
    # The local clock steps after start: the estimate does not move.
    host.skew += 30.0
    assert overdue(append, clock.now()) is None
    host.skew -= 3630.0
    assert overdue(append, clock.now()) is None
    # Time passes on the broker (monotonic here): the query times out after 10 s, not before.
    host.tick(9.0)
    assert overdue(append, clock.now()) is None
    host.tick(1.5)
    assert overdue(append, clock.now()) == pytest.approx(0.55, abs=1e-3)  # 0.05 + 9 + 1.5 - 10


@pytest.mark.parametrize("skew", [30.0, -3600.0])
def test_stale_queries_after_down_forward_are_dropped_a_fresh_one_is_not(skew: float) -> None:
    host = Host(skew)
    clock = host.clock()
    clock.observe(host.broker * 1000)  # `down_forward` read from the control topic
    stale = host.broker + 1.0  # queries appended while the service is down
    host.tick(60.0)  # nothing read meanwhile: the partitions are paused
    host.skew = -skew  # and the host's clock stepped the other way
    clock.observe(host.broker * 1000)  # `up`: a fresh broker timestamp
    host.tick(0.1)
    fresh = host.broker  # a query sent after `up`, fetched with the stale ones
    clock.observe(fresh * 1000)
    clock.observe(stale * 1000)
    assert overdue(stale, clock.now()) == pytest.approx(60.1 - 1.0 - 10.0, abs=1e-3)
    assert overdue(fresh, clock.now()) is None
