"""The pending table (pure): manifests and answers in, replies and decisions out.

After jPOS's QMUX: the pending entry (the manifest) is written before any leg request is
sent, answers are matched by an explicit key (cid), and late, duplicate and orphan
answers are counted and reported rather than dropped silently.

Every reply is paired with a `Decision` that the loop writes in the same Kafka
transaction; `on_decision` replays those after a restart so the table knows what was
already sent.

Cost stays flat under load: deadlines sit in a heap (a tick looks only at what is due),
and a finished transaction is kept only as its encoded final reply (for resubmitted
mids), oldest first out, within a byte budget and the mid retention.
"""

from __future__ import annotations

import heapq
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from switch.contract.internal import Decision, DuplicateNotice, LegAnswer, Manifest
from switch.contract.messages import (
    QUEUED,
    TIMEOUT,
    Codes,
    FieldError,
    Reply,
    encode,
    reply_decoder,
)
from switch.contract.replies import now_rfc3339, reject_reply
from switch.correlator.render import build_reply

ENTRY_KEYS = ("EIM", "MII", "XIM")
LATE_GRACE_S = 60.0  # how long a timed-out query leg may still answer with a supplement
DONE_OVERHEAD = 400  # bytes per finished entry besides its reply (dict slot, key, record), measured


@dataclass(slots=True)
class Tx:
    manifest: Manifest
    partition: int
    answers: dict[str, LegAnswer] = field(default_factory=dict)
    first_sent: bool = False
    missing: dict[str, str] = field(default_factory=dict)
    supplemented: set[str] = field(default_factory=set)
    held: list[DuplicateNotice] = field(default_factory=list)
    grace_pushed: bool = False

    @property
    def complete(self) -> bool:
        return all(s in self.answers for s in self.manifest.expected)

    def outstanding(self, status: str) -> bool:
        return any(v == status and s not in self.answers for s, v in self.missing.items())


@dataclass(slots=True, frozen=True)
class Done:
    """A finished transaction: its final reply, encoded, to answer resubmitted mids."""

    reply: bytes
    partition: int
    done_at: float
    reply_to: str | None


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
    def __init__(
        self, *, retention_s: float = 24 * 3600.0, max_bytes: int = 32 * 1024 * 1024,
        late_grace_s: float = LATE_GRACE_S,
    ) -> None:
        self.txs: dict[str, Tx] = {}
        self.done: OrderedDict[str, Done] = OrderedDict()
        self.retention_s = retention_s
        self.max_bytes = max_bytes
        self.late_grace_s = late_grace_s
        self.counters = Counters()
        self.events: list[tuple[str, str, str]] = []  # (kind, cid, detail), for the log
        self._deadlines: list[tuple[float, str]] = []
        self._graces: list[tuple[float, str]] = []
        self._done_bytes = 0

    def __len__(self) -> int:
        return len(self.txs) + len(self.done)

    @property
    def open_count(self) -> int:
        return len(self.txs)

    @property
    def done_bytes(self) -> int:
        return self._done_bytes

    # ------------------------------------------------------------------ inputs

    def on_manifest(self, m: Manifest, partition: int) -> list[Emit]:
        if m.cid in self.txs or m.cid in self.done:
            self._note("duplicate_manifest", m.cid, "")
            return []
        self.txs[m.cid] = Tx(manifest=m, partition=partition)
        heapq.heappush(self._deadlines, (m.deadline, m.cid))
        return []

    def on_answer(self, a: LegAnswer, now: float | None = None) -> list[Emit]:
        tx = self.txs.get(a.cid)
        if tx is None:
            if a.cid in self.done:
                self.counters.duplicate_answers += 1
                self._note("answer_after_finish", a.cid, a.system)
            else:
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
        now = time.time() if now is None else now
        if not tx.first_sent:
            return self._first(tx, {}, now) if tx.complete else []
        self.counters.late += 1
        self._note("late", a.cid, a.system)
        emits = []
        if a.system in tx.missing and a.system not in tx.supplemented:
            emits.append(self._supplement(tx, a.system, now))
        self._maybe_finish(tx, now)
        return emits

    def on_duplicate(self, n: DuplicateNotice) -> list[Emit]:
        self.counters.duplicates += 1
        tx = self.txs.get(n.cid)
        if tx is not None:
            if not tx.first_sent:
                tx.held.append(n)
                return []
            return [self._duplicate(tx, n)]
        done = self.done.get(n.cid)
        if done is not None:
            original = reply_decoder.decode(done.reply)
            reply = msgspec.structs.replace(original, duplicate=True, supplement=False,
                                            ts=now_rfc3339())
            return [Emit(reply, n.reply_to or done.reply_to, None, n.cid)]
        err = FieldError(
            field="mid", code=Codes.DUPLICATE_MID,
            text=f"REJECT DUPLICATE MID/{n.mid}: THE ORIGINAL REPLY IS NO LONGER HELD; "
            "RESUBMIT WITH A NEW MID",
        )
        reply = reject_reply(cid=n.cid, mid=n.mid, ori=None, mke=None, errors=[err], echo="")
        return [Emit(reply, n.reply_to, None, n.cid)]

    def on_decision(self, d: Decision) -> None:
        """Restore: a reply recorded by `d` was sent before the restart."""
        tx = self.txs.get(d.cid)
        if tx is None:
            return
        if d.event == "first":
            tx.first_sent = True
            tx.missing = dict(d.missing)
            tx.held.clear()  # held duplicates were answered with the first reply
        elif d.event == "supplement" and d.leg:
            tx.supplemented.add(d.leg)
        self._maybe_finish(tx, d.ts or time.time())

    def expire(self, now: float, partitions: set[int] | None = None) -> list[Emit]:
        """Transactions past their deadline get their reply: QUEUED entries, TIMEOUT queries.

        Only in `partitions` (when given): those whose log has been read to its end, so an
        answer already written in time is never mistaken for a missing one (after a
        restart, or while the correlator lags)."""
        emits: list[Emit] = []
        blocked: list[tuple[float, str]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            item = heapq.heappop(self._deadlines)
            tx = self.txs.get(item[1])
            if tx is None or tx.first_sent:
                continue
            if partitions is not None and tx.partition not in partitions:
                blocked.append(item)
                continue
            status = QUEUED if tx.manifest.mke in ENTRY_KEYS else TIMEOUT
            missing = {s: status for s in tx.manifest.expected if s not in tx.answers}
            self.counters.timeouts += 1
            emits.extend(self._first(tx, missing, now))
        for item in blocked:
            heapq.heappush(self._deadlines, item)
        while self._graces and self._graces[0][0] <= now:
            _, cid = heapq.heappop(self._graces)
            tx = self.txs.get(cid)
            if tx is not None and tx.first_sent and not tx.outstanding(QUEUED):
                self._finish(tx, now)
        return emits

    def sweep(self, now: float) -> int:
        """Forget finished transactions older than the retention. Returns how many."""
        gone = 0
        while self.done:
            cid, d = next(iter(self.done.items()))
            if now - d.done_at <= self.retention_s:
                break
            self._forget(cid)
            gone += 1
        self.counters.evicted += gone
        return gone

    def drop_partitions(self, partitions: set[int]) -> None:
        for cid, tx in list(self.txs.items()):
            if tx.partition in partitions:
                del self.txs[cid]
        for cid, d in list(self.done.items()):
            if d.partition in partitions:
                self._forget(cid)

    # ------------------------------------------------------------------ internals

    def _first(self, tx: Tx, missing: dict[str, str], now: float) -> list[Emit]:
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
        self._maybe_finish(tx, now, reply)
        return emits

    def _supplement(self, tx: Tx, leg: str, now: float) -> Emit:
        tx.supplemented.add(leg)
        still = self._still_missing(tx)
        reply = build_reply(tx.manifest, tx.answers, still, supplement=True)
        self.counters.supplements += 1
        return Emit(reply, tx.manifest.reply_to,
                    Decision(cid=tx.manifest.cid, event="supplement", leg=leg, ts=now),
                    tx.manifest.cid)

    def _duplicate(self, tx: Tx, n: DuplicateNotice) -> Emit:
        reply = build_reply(tx.manifest, tx.answers, self._still_missing(tx), duplicate=True)
        return Emit(reply, n.reply_to or tx.manifest.reply_to, None, tx.manifest.cid)

    @staticmethod
    def _still_missing(tx: Tx) -> dict[str, str]:
        return {s: v for s, v in tx.missing.items() if s not in tx.answers}

    def _maybe_finish(self, tx: Tx, now: float, reply: Reply | None = None) -> None:
        """Finished once replied with no QUEUED leg outstanding; a TIMEOUT query leg keeps
        the entry open for a grace period, in which its late answer gets a supplement."""
        if not tx.first_sent or tx.outstanding(QUEUED):
            return
        if tx.outstanding(TIMEOUT):
            if not tx.grace_pushed:
                tx.grace_pushed = True
                heapq.heappush(self._graces, (now + self.late_grace_s, tx.manifest.cid))
            return
        self._finish(tx, now, reply)

    def _finish(self, tx: Tx, now: float, reply: Reply | None = None) -> None:
        cid = tx.manifest.cid
        if reply is None or reply.supplement:
            reply = build_reply(tx.manifest, tx.answers, self._still_missing(tx))
        data = encode(reply)
        del self.txs[cid]
        self.done[cid] = Done(data, tx.partition, now, tx.manifest.reply_to)
        self._done_bytes += len(data) + DONE_OVERHEAD
        while self._done_bytes > self.max_bytes and self.done:
            self._forget(next(iter(self.done)))
            self.counters.evicted += 1

    def _forget(self, cid: str) -> None:
        d = self.done.pop(cid)
        self._done_bytes -= len(d.reply) + DONE_OVERHEAD

    def _note(self, kind: str, cid: str, detail: str) -> None:
        self.events.append((kind, cid, detail))
