"""The broker's clock, as seen from one process: deadlines that survive clock steps and skew.

A transaction's deadline is a duration (`timeout_s`) counted from the broker's append time
of the record that started it (the internal topics use `LogAppendTime`). Comparing that
with this host's wall clock would make a clock step or a skew between hosts fire every
deadline at once, or none for an hour. Instead each process keeps an estimate of the
broker's "now": the append time of the freshest record it has read, advanced by its own
monotonic clock since it read it. A step of this host's wall clock changes nothing; only
the broker's clock counts, and every component reads the same one.

The estimate is `max(append_ts - mono_at_read)` over the records seen in the last
`window_s` (delivery delay only makes a record look older, so the largest offset is the
best), plus the monotonic clock now. Before any record is seen it falls back to the wall
clock at start, so a process on an empty topic still has a consistent clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class BrokerClock:
    def __init__(
        self,
        *,
        window_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._mono = monotonic
        self._window_s = window_s
        start = monotonic()
        # Until a record is read: this host's wall clock, frozen into an offset at start.
        self._fallback = wall() - start
        self._current: float | None = None  # best offset in the current window
        self._previous: float | None = None  # ... and in the one before
        self._window_start = start

    def observe(self, append_ms: int | float | None) -> None:
        """A record with broker append time `append_ms` (epoch milliseconds) was just read."""
        if append_ms is None or append_ms <= 0:
            return
        mono = self._mono()
        if mono - self._window_start > self._window_s:
            self._previous, self._current = self._current, None
            self._window_start = mono
        offset = append_ms / 1000.0 - mono
        if self._current is None or offset > self._current:
            self._current = offset

    def now(self) -> float:
        """The broker's time now, in epoch seconds (estimated)."""
        offsets = [o for o in (self._current, self._previous) if o is not None]
        return self._mono() + (max(offsets) if offsets else self._fallback)

    @property
    def synced(self) -> bool:
        """True once a broker timestamp has been seen."""
        return self._current is not None or self._previous is not None
