"""Prometheus metrics of the switch: every definition in one place, and pure helpers.

One `Metrics` object holds a registry of its own and every metric; a process makes one
and hands it to the components it runs (`switch up` in one process: one registry for all
four, told apart by the `component` label where two could report the same thing). The
loops only call `inc`/`observe`/`set` on the objects here, with label values from small
fixed sets (MKEs, statuses, reject codes, systems, topics, partitions): never a cid, mid,
ORI, LNO or anything else per transaction, and never image bytes.

`serve` exposes a registry on HTTP (`/metrics`), bound to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import start_http_server

# No `*_created` series beside each counter: they double what is scraped and say only when
# the process started counting, which `process_start_time_seconds`-style targets show anyway.
disable_created_metrics()  # type: ignore[no-untyped-call]

DEFAULT_HOST = "127.0.0.1"
LAG_EVERY_S = 1.0  # how often a component refreshes the lag of its assigned partitions
UNKNOWN = "unknown"  # a label value that is not known (a reject of an unreadable request)

# Seconds. A leg answers in milliseconds when the system is up and by the deadline (10 s
# by default) when it is slow; the buckets cover both ends.
LEG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Sizing one photo: about 2 ms (a small conforming JPEG) to the 2 s time budget.
IMAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)

# The pending table's counters exported, and the name of each (switch_<name>_total).
PENDING_COUNTERS = {
    "late": "late_answers",
    "duplicate_answers": "duplicate_answers",
    "orphans": "orphan_answers",
    "timeouts": "leg_timeouts",
}


class Metrics:
    """Every metric of the switch, in a registry of its own (so that two switches in one
    process, as in the tests, never collide)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        # correlator
        self.replies = Counter(
            "switch_replies", "Replies sent by the correlator, by MKE, status and kind "
            "(first: the transaction's reply; supplement: a late leg's; duplicate: to a "
            "resubmitted mid)", ["mke", "status", "kind"], registry=r)
        self.leg_latency = Histogram(
            "switch_leg_latency_seconds", "Time from the request to each leg's answer, as "
            "reported in the reply (the leg's ms), by system", ["system"],
            buckets=LEG_BUCKETS, registry=r)
        self.pending = Gauge(
            "switch_pending_transactions", "Transactions the correlator is waiting on",
            registry=r)
        self.pending_events = {
            field: Counter(f"switch_{name}", f"Correlator: {name.replace('_', ' ')} "
                           "(from the pending table's counters)", registry=r)
            for field, name in PENDING_COUNTERS.items()
        }
        # router
        self.dead_letters = Counter(
            "switch_dead_letters", "Inputs written to the dead-letter topic by the router, by "
            "cause (unreadable: not a request; undeliverable: its outputs could not be "
            "written)", ["cause"], registry=r)
        self.rejects = Counter(
            "switch_rejects", "Requests the router rejected, by MKE and the first error's code",
            ["mke", "code"], registry=r)
        self.routed = Counter(
            "switch_routed", "Requests the router routed to their legs, by MKE", ["mke"],
            registry=r)
        self.image_sizing = Histogram(
            "switch_image_sizing_seconds", "Time the router spent sizing one image (a "
            "worker's round trip), by outcome (ok, rejected)", ["outcome"],
            buckets=IMAGE_BUCKETS, registry=r)
        # services
        self.answers = Counter(
            "switch_service_answers", "Leg answers sent by the LEADS and NCIC services, by "
            "system and status", ["system", "status"], registry=r)
        # every consuming component
        self.lag = Gauge(
            "switch_consumer_lag", "Records not yet consumed (end offset - position) in each "
            "partition assigned to the component", ["component", "topic", "partition"],
            registry=r)


# --------------------------------------------------------------------------- pure helpers


def reply_kind(supplement: bool, duplicate: bool) -> str:
    """The `kind` label of a reply."""
    return "supplement" if supplement else ("duplicate" if duplicate else "first")


def label(value: str | None) -> str:
    """A label value, `unknown` for what is not known."""
    return value if value else UNKNOWN


def counter_deltas(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """How much each exported pending-table counter grew (never negative: a counter that
    went down was reset, and counts from zero)."""
    out: dict[str, int] = {}
    for field in PENDING_COUNTERS:
        a, b = after.get(field, 0), before.get(field, 0)
        out[field] = a - b if a >= b else a
    return out


def counter_values(counters: Any) -> dict[str, int]:
    """A dataclass of counters (the pending table's `Counters`) as a plain dict."""
    return {k: int(v) for k, v in asdict(counters).items()}


def lag(end: int | None, position: int | None) -> int | None:
    """Records not yet consumed; None while either offset is unknown."""
    if end is None or position is None:
        return None
    return max(0, end - position)


def instance_port(base: int | None, index: int) -> int | None:
    """`switch up --instances N`: the metrics port of the child at `index` (base + index),
    or None when metrics are off."""
    return None if not base else base + index


@dataclass
class LagReporter:
    """Refreshes the lag gauge of one component's assigned partitions, at most every
    LAG_EVERY_S; drops the series of partitions no longer assigned."""

    metrics: Metrics
    component: str
    every_s: float = LAG_EVERY_S
    _last: float = 0.0
    _shown: frozenset[tuple[str, int]] = frozenset()

    def due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if now - self._last < self.every_s:
            return False
        self._last = now
        return True

    def report(self, values: Iterable[tuple[str, int, int]]) -> None:
        """`values`: (topic, partition, lag) of every partition assigned now."""
        shown: set[tuple[str, int]] = set()
        for topic, partition, n in values:
            self.metrics.lag.labels(self.component, topic, str(partition)).set(n)
            shown.add((topic, partition))
        for topic, partition in self._shown - shown:
            try:
                self.metrics.lag.remove(self.component, topic, str(partition))
            except KeyError:
                pass
        self._shown = frozenset(shown)

    async def update(self, consumer: Any) -> None:
        """Read each assigned partition's end (the last stable offset a read_committed
        consumer knows from its fetches, else the high watermark: no request to the broker)
        and position, and report them. Call after a fetch; cheap when not due."""
        if not self.due():
            return
        values: list[tuple[str, int, int]] = []
        for tp in consumer.assignment():
            end = consumer.last_stable_offset(tp)
            if end is None:
                end = consumer.highwater(tp)
            try:
                position = await consumer.position(tp)
            except Exception:  # not yet positioned (a restore under way)
                continue
            n = lag(end, position)
            if n is not None:
                values.append((tp.topic, tp.partition, n))
        self.report(values)


def serve(metrics: Metrics, port: int, host: str = DEFAULT_HOST) -> Any:
    """Serve `metrics` on http://host:port/metrics in a daemon thread; port 0 picks a free
    one (the server's `server_port`). Returns the server: `shutdown()` it to stop."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
