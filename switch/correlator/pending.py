"""The pending table (pure): manifests and answers in, replies and decisions out.

After jPOS's QMUX: the pending entry (the manifest) is written before any leg request is
sent, answers are matched by an explicit key (cid), and late, duplicate and orphan
answers are counted and reported rather than dropped silently.

Every reply is paired with a `Decision` that the loop writes in the same Kafka
transaction; `on_decision` replays those after a restart so the table knows what was
already sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from switch.contract.internal import Decision, DuplicateNotice, LegAnswer, Manifest
from switch.contract.messages import QUEUED, REJECTED, TIMEOUT, Codes, FieldError, Reply
from switch.contract.replies import reject_reply
from switch.correlator.render import build_reply

ENTRY_KEYS = ("EIM", "MII", "XIM")


@dataclass
class Tx:
    manifest: Manifest
    partition: int
    answers: dict[str, LegAnswer] = field(default_factory=dict)
    first_sent: bool = False
    missing: dict[str, str] = field(default_factory=dict)
    supplemented: set[str] = field(default_factory=set)
    held: list[DuplicateNotice] = field(default_factory=list)
    done_at: float | None = None
    size: int = 0

    @property
    def complete(self) -> bool:
        return all(s in self.answers for s in self.manifest.expected)


@dataclass(frozen=True)
class Emit:
    """A reply to send, where to, and the decision that records it (None for duplicates)."""

    reply: Reply
    topic: str | None  # the request's reply_to, else None for the default replies topic
    decision: Decision | None
    cid: str


@dataclass
class Counters:
    replies: int = 0
    supplements: int = 0
    timeouts: int = 0
    late: int = 0
    duplicate_answers: int = 0
    orphans: int = 0
    duplicates: int = 0
    evicted: int = 0


class PendingTable:
    def __init__(self, *, retention_s: float = 24 * 3600.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.txs: dict[str, Tx] = {}
        self.retention_s = retention_s
        self.max_bytes = max_bytes
        self.counters = Counters()
        self._done_bytes = 0
        self.events: list[tuple[str, str, str]] = []  # (kind, cid, detail), for the log

    def __len__(self) -> int:
        return len(self.txs)

    @property
    def open_count(self) -> int:
        return sum(1 for t in self.txs.values() if not t.first_sent)

    # ------------------------------------------------------------------ inputs

    def on_manifest(self, m: Manifest, partition: int) -> list[Emit]:
        if m.cid in self.txs:
            self._note("duplicate_manifest", m.cid, "")
            return []
        self.txs[m.cid] = Tx(manifest=m, partition=partition)
        return []

    def on_answer(self, a: LegAnswer, now: float | None = None) -> list[Emit]:
        tx = self.txs.get(a.cid)
        if tx is None:
            self.counters.orphans += 1
            self._note("orphan", a.cid, a.system)
            return []
        if a.system not in tx.manifest.expected:
            self.counters.orphans += 1
            self._note("orphan", a.cid, f"{a.system} was not routed")
            return []
        if a.system in tx.answers:
            self.counters.duplicate_answers += 1
            self._note("duplicate_answer", a.cid, a.system)
            return []
        tx.answers[a.system] = a
        tx.size += sum(len(i.image) for i in a.images) + 512
        if not tx.first_sent:
            if tx.complete:
                return self._first(tx, {}, now)
            return []
        self.counters.late += 1
        self._note("late", a.cid, a.system)
        if a.system in tx.missing and a.system not in tx.supplemented:
            return [self._supplement(tx, a.system, now)]
        return []

    def on_duplicate(self, n: DuplicateNotice) -> list[Emit]:
        self.counters.duplicates += 1
        tx = self.txs.get(n.cid)
        if tx is None:
            err = FieldError(
                field="mid", code=Codes.DUPLICATE_MID,
                text=f"REJECT DUPLICATE MID/{n.mid}: THE ORIGINAL REPLY IS NO LONGER HELD; "
                "RESUBMIT WITH A NEW MID",
            )
            reply = reject_reply(cid=n.cid, mid=n.mid, ori=None, mke=None, errors=[err], echo="")
            return [Emit(reply, n.reply_to, None, n.cid)]
        if not tx.first_sent:
            tx.held.append(n)
            return []
        return [self._duplicate(tx, n)]

    def on_decision(self, d: Decision) -> None:
        """Restore: a reply recorded by `d` was sent before the restart."""
        tx = self.txs.get(d.cid)
        if tx is None:
            return
        if d.event == "first":
            tx.first_sent = True
            tx.missing = dict(d.missing)
            tx.held.clear()  # held duplicates were answered with the first reply
            self._maybe_done(tx, d.ts)
        elif d.event == "supplement" and d.leg:
            tx.supplemented.add(d.leg)
            self._maybe_done(tx, d.ts)

    def expire(self, now: float, partitions: set[int] | None = None) -> list[Emit]:
        """Transactions past their deadline get their reply: QUEUED entries, TIMEOUT queries.

        Only in `partitions` (when given): those whose log has been read to its end, so an
        answer already written in time is never mistaken for a missing one (after a
        restart, or while the correlator lags)."""
        emits: list[Emit] = []
        for tx in list(self.txs.values()):
            if tx.first_sent or tx.manifest.deadline > now:
                continue
            if partitions is not None and tx.partition not in partitions:
                continue
            status = QUEUED if tx.manifest.mke in ENTRY_KEYS else TIMEOUT
            missing = {s: status for s in tx.manifest.expected if s not in tx.answers}
            self.counters.timeouts += 1
            emits.extend(self._first(tx, missing, now))
        return emits

    def sweep(self, now: float) -> int:
        """Forget finished transactions older than the retention, then the oldest ones while
        over the memory budget. Returns how many were forgotten."""
        gone = 0
        for cid, tx in list(self.txs.items()):
            if tx.done_at is not None and now - tx.done_at > self.retention_s:
                self._drop(cid, tx)
                gone += 1
        if self._done_bytes > self.max_bytes:
            done = sorted(
                ((t.done_at, c) for c, t in self.txs.items() if t.done_at is not None)
            )
            for _, cid in done:
                if self._done_bytes <= self.max_bytes * 0.8:
                    break
                self._drop(cid, self.txs[cid])
                gone += 1
        self.counters.evicted += gone
        return gone

    def drop_partitions(self, partitions: set[int]) -> None:
        for cid, tx in list(self.txs.items()):
            if tx.partition in partitions:
                self._drop(cid, tx)

    # ------------------------------------------------------------------ internals

    def _first(self, tx: Tx, missing: dict[str, str], now: float | None) -> list[Emit]:
        now = time.time() if now is None else now
        tx.first_sent = True
        tx.missing = missing
        reply = build_reply(tx.manifest, tx.answers, missing)
        self.counters.replies += 1
        emits = [Emit(reply, tx.manifest.reply_to,
                      Decision(cid=tx.manifest.cid, event="first", missing=missing, ts=now),
                      tx.manifest.cid)]
        for n in tx.held:
            emits.append(self._duplicate(tx, n))
        tx.held.clear()
        self._maybe_done(tx, now)
        return emits

    def _supplement(self, tx: Tx, leg: str, now: float | None) -> Emit:
        now = time.time() if now is None else now
        tx.supplemented.add(leg)
        still = {s: v for s, v in tx.missing.items() if s not in tx.answers}
        reply = build_reply(tx.manifest, tx.answers, still, supplement=True)
        self.counters.supplements += 1
        self._maybe_done(tx, now)
        return Emit(reply, tx.manifest.reply_to,
                    Decision(cid=tx.manifest.cid, event="supplement", leg=leg, ts=now),
                    tx.manifest.cid)

    def _duplicate(self, tx: Tx, n: DuplicateNotice) -> Emit:
        still = {s: v for s, v in tx.missing.items() if s not in tx.answers}
        reply = build_reply(tx.manifest, tx.answers, still, duplicate=True)
        return Emit(reply, n.reply_to or tx.manifest.reply_to, None, tx.manifest.cid)

    def _maybe_done(self, tx: Tx, now: float) -> None:
        """Finished once replied with no QUEUED leg outstanding (a TIMEOUT query leg may
        still answer late while the entry is kept, and gets its supplement)."""
        queued = any(v == QUEUED and s not in tx.answers for s, v in tx.missing.items())
        if tx.done_at is None and tx.first_sent and not queued:
            tx.done_at = now
            self._done_bytes += tx.size

    def _drop(self, cid: str, tx: Tx) -> None:
        if tx.done_at is not None:
            self._done_bytes -= tx.size
        del self.txs[cid]

    def _note(self, kind: str, cid: str, detail: str) -> None:
        self.events.append((kind, cid, detail))


def is_rejected(reply: Reply) -> bool:
    return reply.status == REJECTED
