"""What a replay measured: HDR histograms, counts and the summary. Pure; no Kafka.

Latencies are recorded in microseconds in HDR histograms (1 us to 1 hour, 3
significant digits), so percentiles are exact to 0.1 % over the whole range without
keeping every sample, and histograms of several runs can be added.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)
SYSTEMS = ("LEADS", "NCIC")


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def record_ms(h: HdrHistogram, ms: float) -> None:
    h.record_value(min(HIGHEST_US, max(LOWEST_US, int(ms * 1000))))


def describe(h: HdrHistogram) -> dict[str, Any]:
    """count, mean, min, p50, p90, p99, p99.9, max in milliseconds."""
    n = h.get_total_count()
    if n == 0:
        return {"count": 0}
    out: dict[str, Any] = {
        "count": n,
        "mean": round(h.get_mean_value() / 1000, 3),
        "min": round(h.get_min_value() / 1000, 3),
    }
    for p in PERCENTILES:
        out[f"p{p:g}"] = round(h.get_value_at_percentile(p) / 1000, 3)
    out["max"] = round(h.get_max_value() / 1000, 3)
    return out


def encode_histogram(h: HdrHistogram) -> str:
    """The standard compressed HDR encoding (base64 text), to merge runs later."""
    data = h.encode()
    return data.decode() if isinstance(data, bytes) else str(data)


def decode_histogram(text: str) -> HdrHistogram:
    h = new_histogram()
    h.decode_and_add(text)
    return h


@dataclass
class Recorder:
    """Everything a replay counts. Times in milliseconds."""

    latency: dict[str, HdrHistogram] = field(default_factory=dict)  # "all", then per MKE
    legs: dict[str, HdrHistogram] = field(default_factory=dict)  # per system: leg `ms`
    leg_status: dict[str, Counter[str]] = field(default_factory=dict)
    status: Counter[str] = field(default_factory=Counter)
    status_by_mke: dict[str, Counter[str]] = field(default_factory=dict)
    send_lag: HdrHistogram = field(default_factory=new_histogram)
    dependency_wait: HdrHistogram = field(default_factory=new_histogram)
    sent: Counter[str] = field(default_factory=Counter)  # per MKE
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count
    missing: Counter[str] = field(default_factory=Counter)  # per MKE
    missing_mids: list[str] = field(default_factory=list)
    no_reply_expected: int = 0
    send_errors: int = 0
    supplements: int = 0
    duplicates: int = 0
    replies: int = 0

    def _h(self, table: dict[str, HdrHistogram], key: str) -> HdrHistogram:
        h = table.get(key)
        if h is None:
            h = table[key] = new_histogram()
        return h

    def on_sent(self, mke: str, lag_ms: float, dependency_wait_ms: float | None = None) -> None:
        self.sent[mke] += 1
        record_ms(self.send_lag, max(0.0, lag_ms))
        if dependency_wait_ms is not None:
            record_ms(self.dependency_wait, max(0.0, dependency_wait_ms))

    def on_reply(self, mke: str, latency_ms: float, status: str,
                 legs: dict[str, tuple[str, float | None]], *, duplicate: bool = False) -> None:
        """The first (non-supplement) reply to a request sent by this run."""
        self.replies += 1
        if duplicate:
            self.duplicates += 1
        record_ms(self._h(self.latency, "all"), latency_ms)
        record_ms(self._h(self.latency, mke), latency_ms)
        self.status[status] += 1
        self.status_by_mke.setdefault(mke, Counter())[status] += 1
        for system, (leg_status, ms) in legs.items():
            self.leg_status.setdefault(system, Counter())[leg_status] += 1
            if ms is not None:
                record_ms(self._h(self.legs, system), ms)

    def on_missing(self, mke: str, mid: str | None) -> None:
        self.missing[mke] += 1
        if mid and len(self.missing_mids) < 20:
            self.missing_mids.append(mid)

    def summary(self, *, elapsed_s: float, offered_rate: float | None, send_span_s: float,
                reply_span_s: float, tail_s: float | None, **extra: Any) -> dict[str, Any]:
        sent = sum(self.sent.values())
        expected = sent - self.no_reply_expected
        out: dict[str, Any] = dict(extra)
        out.update({
            "sent": sent,
            "sent_by_mke": dict(sorted(self.sent.items())),
            "expected_replies": expected,
            "replies": self.replies,
            "missing": sum(self.missing.values()),
            "missing_by_mke": dict(sorted(self.missing.items())),
            "missing_mids": list(self.missing_mids),
            "skipped": dict(sorted(self.skipped.items())),
            "no_reply_expected": self.no_reply_expected,
            "send_errors": self.send_errors,
            "supplements": self.supplements,
            "duplicates": self.duplicates,
            "status": dict(sorted(self.status.items())),
            "status_by_mke": {k: dict(sorted(v.items())) for k, v in sorted(self.status_by_mke.items())},
            "elapsed_s": round(elapsed_s, 3),
            "offered_rate": round(offered_rate, 2) if offered_rate else None,
            "send_rate": round(sent / send_span_s, 2) if send_span_s > 0 else None,
            "reply_rate": round(self.replies / reply_span_s, 2) if reply_span_s > 0 else None,
            "tail_s": round(tail_s, 3) if tail_s is not None else None,
            "latency_ms": {k: describe(v) for k, v in sorted(self.latency.items(), key=_all_first)},
            "leg_ms": {k: describe(v) for k, v in sorted(self.legs.items())},
            "leg_status": {k: dict(sorted(v.items())) for k, v in sorted(self.leg_status.items())},
            "send_lag_ms": describe(self.send_lag),
            "dependency_wait_ms": describe(self.dependency_wait),
            "hdr": {k: encode_histogram(v) for k, v in sorted(self.latency.items(), key=_all_first)},
        })
        return out


def _all_first(item: tuple[str, Any]) -> tuple[int, str]:
    return (0 if item[0] == "all" else 1, item[0])


# --------------------------------------------------------------------------- text


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}" if v >= 100 else f"{v:.2f}"
    return str(v)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def format_summary(s: dict[str, Any]) -> str:
    """The replay's final report as text."""
    out: list[str] = []
    head = f"switch replay: {s.get('file', '')} run {s.get('run_id', '')}".rstrip()
    out.append(head)
    out.append(
        f"sent {s['sent']} in {_fmt(s['elapsed_s'])} s (offered {_fmt(s['offered_rate'])}/s, "
        f"sent {_fmt(s['send_rate'])}/s, replies {_fmt(s['reply_rate'])}/s); "
        f"replies {s['replies']} of {s['expected_replies']} expected, missing {s['missing']}"
    )
    extras = []
    if s["skipped"]:
        extras.append("skipped " + ", ".join(f"{k} {v}" for k, v in s["skipped"].items()))
    if s["no_reply_expected"]:
        extras.append(f"{s['no_reply_expected']} sent without a reply expected (dead letters)")
    if s["supplements"]:
        extras.append(f"supplements {s['supplements']}")
    if s["send_errors"]:
        extras.append(f"send errors {s['send_errors']}")
    if s["duplicates"]:
        extras.append(f"duplicate replies {s['duplicates']}")
    if extras:
        out.append("; ".join(extras))
    out.append("")
    statuses = sorted({st for c in s["status_by_mke"].values() for st in c})
    cols = ["count", "p50", "p90", "p99", "p99.9", "max"]
    rows = [["latency ms", *cols, *statuses]]
    for key, d in s["latency_ms"].items():
        by = s["status"] if key == "all" else s["status_by_mke"].get(key, {})
        rows.append([key, *(_fmt(d.get(c)) for c in cols), *(str(by.get(st, 0)) for st in statuses)])
    if len(rows) > 1:
        out += _table(rows)
    if s["leg_ms"] or s["leg_status"]:
        out.append("")
        leg_statuses = sorted({st for c in s["leg_status"].values() for st in c})
        rows = [["leg ms", *cols, *leg_statuses]]
        for system in sorted(set(s["leg_ms"]) | set(s["leg_status"])):
            d = s["leg_ms"].get(system, {"count": 0})
            by = s["leg_status"].get(system, {})
            rows.append([system, *(_fmt(d.get(c)) for c in cols),
                         *(str(by.get(st, 0)) for st in leg_statuses)])
        out += _table(rows)
    lag, dep = s["send_lag_ms"], s["dependency_wait_ms"]
    out.append("")
    if lag.get("count"):
        out.append(f"send lag behind schedule ms: p50 {_fmt(lag['p50'])} p99 {_fmt(lag['p99'])} "
                   f"max {_fmt(lag['max'])} (includes waits for a parent's reply)")
    if dep.get("count"):
        out.append(f"waits for a parent's reply: {dep['count']}, ms p50 {_fmt(dep['p50'])} "
                   f"p99 {_fmt(dep['p99'])} max {_fmt(dep['max'])}")
    if s["missing"]:
        out.append(f"MISSING replies by MKE: {s['missing_by_mke']}; first mids: "
                   + " ".join(s["missing_mids"][:5]))
    return "\n".join(out).rstrip() + "\n"
