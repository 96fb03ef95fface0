"""When a query leg is past its deadline (pure): counted on the broker's clock only.

The router gives each leg a duration (`LegRequest.timeout_s`), and the broker stamps the
leg request's record with its append time (the topic uses `LogAppendTime`). A query leg is
past its deadline once the broker's time, as this service estimates it
(switch/kafka/brokerclock.py), is beyond that append time + the timeout. No wall clock of
this host or of the router's host is compared with anything, so a step or a skew of
either changes nothing.

A record stamped `CreateTime` (a topic created by an older version) carries the
producer's wall clock, which cannot be compared with anything here: such a query is never
dropped. That is safe: if it is late, the correlator has answered TIMEOUT already and
counts this answer as a late one; nothing is lost and nothing is doubled.
"""

from __future__ import annotations

CREATE_TIME = 0  # ConsumerRecord.timestamp_type: the producer's wall clock
LOG_APPEND_TIME = 1  # ... the broker's clock at append


def overdue_s(
    *, append_ms: int | None, timestamp_type: int, timeout_s: float, broker_now: float
) -> float | None:
    """How far past its deadline (seconds) a query leg appended at `append_ms` (epoch
    milliseconds, broker time) is at `broker_now` (epoch seconds, broker time), or None
    if it is not past it or if that cannot be told (not a broker timestamp)."""
    if timestamp_type != LOG_APPEND_TIME or append_ms is None or append_ms <= 0:
        return None
    late = broker_now - (append_ms / 1000.0 + timeout_s)
    return late if late > 0 else None
