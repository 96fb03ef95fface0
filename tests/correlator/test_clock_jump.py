"""Deadlines while this host's wall clock jumps (pure): the pending table counts on the
broker's clock as `BrokerClock` estimates it (monotonic time since the freshest broker
timestamp), so a step of the wall clock in the middle of a transaction's wait neither
fires its deadline early (a jump forward) nor postpones it (a jump back). The service's
"past its deadline" check uses the same clock (services/deadline.py)."""

from __future__ import annotations

import pytest

from services.deadline import LOG_APPEND_TIME, overdue_s
from switch.correlator.pending import PendingTable
from switch.kafka.brokerclock import BrokerClock
from tests.correlator.test_pending import T0, manifest

TIMEOUT = 10.0


class Host:
    """This host's clocks: monotonic time only goes on; the wall clock can be stepped."""

    def __init__(self) -> None:
        self.mono = 500.0
        self.wall = T0 + 7.0  # a little off the broker's clock too

    def run(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@pytest.mark.parametrize("jump_s", [3600.0, -3600.0, 86400.0 * 365, -30.0])
@pytest.mark.parametrize("jump_at", [0.5, 5.0, 9.9])
def test_a_deadline_neither_fires_early_nor_never_when_the_wall_clock_jumps(
        jump_s: float, jump_at: float) -> None:
    host = Host()
    clock = BrokerClock(monotonic=lambda: host.mono, wall=lambda: host.wall)
    table = PendingTable(clock=clock.now)
    appended = T0  # the manifest's broker append time
    clock.observe(int(appended * 1000))  # read as it was appended
    table.on_manifest(manifest(deadline=T0 + TIMEOUT), 0, start=appended)
    fired_at = None
    step = 0.1
    elapsed = 0.0
    while elapsed < 3 * TIMEOUT and fired_at is None:
        host.run(step)
        elapsed = round(elapsed + step, 6)
        if abs(elapsed - jump_at) < step / 2:
            host.wall += jump_s  # e.g. NTP steps the clock, or an operator sets it
        emits = table.expire(clock.now())
        if emits:
            [first] = emits
            assert first.reply.status == "PENDING"
            assert first.reply.legs["NCIC"].status == "QUEUED"
            fired_at = elapsed
    assert fired_at is not None, "the deadline never fired"
    assert TIMEOUT - 1e-6 <= fired_at <= TIMEOUT + step + 1e-6, f"fired after {fired_at} s"


@pytest.mark.parametrize("jump_s", [3600.0, -3600.0])
def test_a_service_judges_a_query_late_on_the_same_clock(jump_s: float) -> None:
    host = Host()
    clock = BrokerClock(monotonic=lambda: host.mono, wall=lambda: host.wall)
    clock.observe(int(T0 * 1000))
    host.run(2.0)
    host.wall += jump_s

    def late() -> float | None:
        return overdue_s(append_ms=int(T0 * 1000), timestamp_type=LOG_APPEND_TIME,
                         timeout_s=TIMEOUT, broker_now=clock.now())

    assert late() is None  # 2 s into a 10 s deadline, whatever the wall clock says
    host.run(7.9)
    assert late() is None
    host.run(0.2)
    assert late() == pytest.approx(0.1)
