"""What the web console remembers, bounded so it can run for days. Pure: no Kafka, no HTTP.

`TransactionIndex` keeps the most recent transactions (cid -> the router's manifest, each
system's answer, their audit entries and reply summaries, each with its time), looked up
by cid, mid, LNO, IMN or trace id; the oldest transaction is forgotten first. `Recent`
keeps the last replies whole (their images too) so a page opened now shows what just
happened; `DeadLetters` the last dead letters, without their raw bytes;
`Rate` the arrival times of the last minute's replies. Reply summaries and dead-letter
views never hold image bytes: only a reply pushed to the page (`reply_event`) does.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from switch.console.state import Counts, FirstSeen
from switch.contract.internal import DuplicateNotice, LegAnswer, Manifest
from switch.contract.messages import AuditEntry, DeadLetter, Leg, Reply

TRANSACTIONS = 20_000  # transactions the search can find
HOPS_PER_TRANSACTION = 64  # audit entries kept per transaction (a handful in practice)
REPLIES_PER_TRANSACTION = 8
RECENT_REPLIES = 100  # whole replies (images included) replayed to a page that connects
DEAD_LETTERS = 500
RATE_WINDOW_S = 60.0
NOW_WINDOW_S = 5.0  # the chart's rate: replies per second over the last 5 s
LATENCY_WINDOW_S = 10.0


class _Counted(msgspec.Struct):
    """An image of an answer, only counted: its fields, the photo's data among them, are
    skipped by the decoder, never decoded."""


class AnswerView(msgspec.Struct, kw_only=True, frozen=True, tag="answer", tag_field="kind"):
    """A leg answer as the console shows it. The console reads every answer on the
    responses topic; decoding their photos (base64 into bytes) only to count them cost the
    `switch up` process a share of a core under load."""

    cid: str
    system: str
    leg: Leg
    images: list[_Counted] = []


response_view_decoder = msgspec.json.Decoder(Manifest | AnswerView | DuplicateNotice)


def reply_summary(reply: Reply) -> dict[str, Any]:
    """A reply as the search shows it: everything but the images' bytes."""
    out: dict[str, Any] = msgspec.to_builtins(reply)
    out["images"] = [
        {k: v for k, v in msgspec.to_builtins(im).items() if k != "image"} | {"bytes": len(im.image)}
        for im in reply.images
    ]
    return out


def reply_event(reply: Reply, first: Any = None) -> dict[str, Any]:
    """A reply as pushed to the page: whole (images as base64, for an <img> data: URL), with
    the first reply a supplement completes (`first`: mid and status, or None when unseen)."""
    out: dict[str, Any] = msgspec.to_builtins(reply)  # bytes -> base64 text
    out["first"] = None if first is None else {"mid": first.mid, "status": first.status}
    return out


def dead_letter_view(letter: DeadLetter, *, dlq_partition: int, dlq_offset: int) -> dict[str, Any]:
    """A dead letter as shown: its reason, where it came from, its key and sizes; never `raw`."""
    return {
        "reason": letter.reason, "topic": letter.topic, "partition": letter.partition,
        "offset": letter.offset, "key": letter.key, "key_bytes": letter.key_bytes,
        "raw_bytes": letter.raw_bytes, "ts": letter.ts,
        "dlq_partition": dlq_partition, "dlq_offset": dlq_offset,
    }


_hop_encoder = msgspec.msgpack.Encoder()
_hop_decoder = msgspec.msgpack.Decoder(AuditEntry)


@dataclass
class Transaction:
    cid: str
    # Audit entries as MessagePack, decoded only to be shown: 3.6 KB per five-hop
    # transaction instead of 4.4 KB as dicts (tracemalloc), ~16 MB at 20,000 transactions.
    hops: list[bytes] = field(default_factory=list)
    replies: list[dict[str, Any]] = field(default_factory=list)
    keys: set[tuple[str, str]] = field(default_factory=set)  # (kind, value) it is found by
    trace_id: str | None = None  # its OpenTelemetry trace (switch/tracing.py)
    manifest: dict[str, Any] | None = None  # what the router expected, and when
    answers: list[dict[str, Any]] = field(default_factory=list)  # each system's, no image bytes

    def view(self) -> dict[str, Any]:
        """The transaction with its hops in time order, each with `since_ms`: the time since
        the first hop (None where a timestamp does not parse)."""
        hops = sorted((msgspec.to_builtins(_hop_decoder.decode(h)) for h in self.hops),
                      key=lambda h: h.get("ts") or "")
        start = _when(hops[0].get("ts")) if hops else None
        timed = []
        for h in hops:
            at = _when(h.get("ts"))
            since = None if at is None or start is None else round((at - start).total_seconds() * 1000, 1)
            timed.append(h | {"since_ms": since})
        return {"cid": self.cid, "trace_id": self.trace_id, "manifest": self.manifest,
                "answers": sorted(self.answers, key=lambda a: a.get("ts") or ""),
                "hops": timed, "replies": list(self.replies)}


def _when(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if isinstance(ts, str) and ts else None
    except ValueError:
        return None


class TransactionIndex:
    """Bounded LRU of transactions by cid, with lookups by mid, LNO and IMN."""

    KINDS = ("mid", "lno", "imn", "trace")

    def __init__(self, capacity: int = TRANSACTIONS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._txns: OrderedDict[str, Transaction] = OrderedDict()
        self._by: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._txns)

    def _txn(self, cid: str) -> Transaction:
        txn = self._txns.get(cid)
        if txn is None:
            txn = self._txns[cid] = Transaction(cid)
            while len(self._txns) > self.capacity:
                _, old = self._txns.popitem(last=False)
                for key in old.keys:
                    cids = self._by.get(key)
                    if cids is not None:
                        cids.discard(old.cid)
                        if not cids:
                            del self._by[key]
        else:
            self._txns.move_to_end(cid)
        return txn

    def _key(self, txn: Transaction, kind: str, value: str | None) -> None:
        if value:
            key = (kind, value.upper())
            txn.keys.add(key)
            self._by.setdefault(key, set()).add(txn.cid)

    def add_audit(self, entry: AuditEntry, trace_id: str | None = None) -> None:
        """An audit entry as a hop of its transaction; `trace_id` from its record's
        traceparent header (every hop of a transaction carries the same one)."""
        if not entry.cid:
            return
        txn = self._txn(entry.cid)
        if trace_id and txn.trace_id is None:
            txn.trace_id = trace_id
            self._key(txn, "trace", trace_id)
        if len(txn.hops) < HOPS_PER_TRANSACTION:
            txn.hops.append(_hop_encoder.encode(entry))
        self._key(txn, "mid", entry.mid)
        self._key(txn, "lno", entry.lno)
        self._key(txn, "imn", entry.imn)

    def add_manifest(self, m: Manifest, ts: str | None = None) -> None:
        """The router's manifest (appended at `ts`): the legs it expects, the ones it
        skipped and why, the deadline."""
        txn = self._txn(m.cid)
        txn.manifest = {"ts": ts, "mke": m.mke, "ori": m.ori, "expected": list(m.expected),
                        "skipped": dict(m.skipped), "timeout_s": m.timeout_s, "lno": m.lno,
                        "imn": m.imn, "nic": m.nic}
        self._key(txn, "mid", m.mid)
        self._key(txn, "lno", m.lno)
        self._key(txn, "imn", m.imn)

    def add_answer(self, a: LegAnswer | AnswerView, ts: str | None = None) -> None:
        """A system's answer (appended at `ts`); its images only as a count."""
        txn = self._txn(a.cid)
        if len(txn.answers) < HOPS_PER_TRANSACTION:
            txn.answers.append({"ts": ts, "system": a.system, "status": a.leg.status,
                                "code": a.leg.code, "text": a.leg.text, "imn": a.leg.imn,
                                "ms": a.leg.ms, "images": len(a.images)})
        self._key(txn, "imn", a.leg.imn)

    def add_reply(self, reply: Reply) -> None:
        txn = self._txn(reply.cid)
        if len(txn.replies) < REPLIES_PER_TRANSACTION:
            txn.replies.append(reply_summary(reply))
        self._key(txn, "mid", reply.mid)
        for leg in reply.legs.values():
            self._key(txn, "imn", leg.imn)
        for im in reply.images:
            self._key(txn, "imn", im.imn)
            self._key(txn, "lno", im.lno)

    def search(self, query: str) -> list[dict[str, Any]]:
        """Every remembered transaction whose cid, mid, LNO, IMN or trace id is `query` (any case)."""
        q = query.strip()
        if not q:
            return []
        cids: list[str] = []
        if q in self._txns:
            cids.append(q)
        for kind in self.KINDS:
            cids += sorted(self._by.get((kind, q.upper()), ()))
        seen: set[str] = set()
        out = []
        for cid in cids:
            if cid not in seen and cid in self._txns:
                seen.add(cid)
                out.append(self._txns[cid].view())
        return out


class Rate:
    """Replies per second over the last `window` seconds."""

    def __init__(self, clock: Callable[[], float], window: float = RATE_WINDOW_S) -> None:
        self.clock = clock
        self.window = window
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def tick(self) -> None:
        now = self.clock()
        self._times.append(now)
        self._prune(now)

    def per_second(self) -> float:
        self._prune(self.clock())
        return len(self._times) / self.window


class LegLatency:
    """The legs' time (router receipt to the slowest system's answer, the reply's largest
    leg `ms`) of the first replies of the last `window` seconds: p50 and p99."""

    def __init__(self, clock: Callable[[], float], window: float = LATENCY_WINDOW_S) -> None:
        self.clock = clock
        self.window = window
        self._samples: deque[tuple[float, float]] = deque()

    def _prune(self, now: float) -> None:
        while self._samples and self._samples[0][0] <= now - self.window:
            self._samples.popleft()

    def add(self, reply: Reply) -> None:
        if reply.supplement or reply.duplicate:
            return
        times = [leg.ms for leg in reply.legs.values() if leg.ms is not None]
        if times:
            now = self.clock()
            self._samples.append((now, max(times)))
            # Here too, not only when a page asks: with no page open, nothing else prunes
            # (found by the `switch up` soak: the parent grew with every reply).
            self._prune(now)

    def percentiles(self) -> tuple[float | None, float | None]:
        self._prune(self.clock())
        values = sorted(ms for _, ms in self._samples)
        if not values:
            return None, None

        def at(q: float) -> float:
            return round(values[min(len(values) - 1, int(q * len(values)))], 1)
        return at(0.5), at(0.99)


class Board:
    """Everything the page shows, fed one record at a time: counts, rate, the recent
    replies, the dead letters and the transaction index."""

    def __init__(self, clock: Callable[[], float], *, capacity: int = TRANSACTIONS) -> None:
        self.counts = Counts()
        self.firsts = FirstSeen()
        self.rate = Rate(clock)
        self.rate_now = Rate(clock, NOW_WINDOW_S)
        self.latency = LegLatency(clock)
        self.index = TransactionIndex(capacity)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_REPLIES)
        self.dead_letters: deque[dict[str, Any]] = deque(maxlen=DEAD_LETTERS)

    def add_reply(self, reply: Reply) -> dict[str, Any]:
        """Count and remember a reply; return the event to push to the pages."""
        self.counts.read += 1
        self.counts.count_shown(reply)
        self.rate.tick()
        self.rate_now.tick()
        self.latency.add(reply)
        first = self.firsts.observe(reply)
        self.index.add_reply(reply)
        event = reply_event(reply, first)
        self.recent.append(event)
        return event

    def add_dead_letter(self, letter: DeadLetter, *, partition: int, offset: int) -> dict[str, Any]:
        view = dead_letter_view(letter, dlq_partition=partition, dlq_offset=offset)
        self.dead_letters.append(view)
        return view

    def stats(self) -> dict[str, Any]:
        """Counts, rates and the legs' latency: one `stats` event a second (the chart's
        points)."""
        c = self.counts
        p50, p99 = self.latency.percentiles()
        return {
            "rate_now_per_s": round(self.rate_now.per_second(), 2), "leg_ms_p50": p50,
            "leg_ms_p99": p99,
            "replies": c.shown, "by_status": dict(c.by_status), "supplements": c.supplements,
            "duplicates": c.duplicates, "unreadable": c.unreadable,
            "rate_per_s": round(self.rate.per_second(), 3), "dead_letters": len(self.dead_letters),
            "transactions": len(self.index),
        }
