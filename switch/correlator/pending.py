"""The pending table (pure): manifests and answers in, replies and changelog records out.

After jPOS's QMUX: the pending entry (the manifest) is written before any leg request is
sent, answers are matched by an explicit key (cid), and late, duplicate and orphan
answers are counted and reported rather than dropped silently.

Deadlines are durations counted from the manifest's broker append time (`start`), and
every `now` is the broker's time as the loop's BrokerClock estimates it, never this
host's wall clock.

Every change of a transaction that has had its first reply is recorded for the
correlator's changelog (`take_changes`), which the loop writes in the same Kafka
transaction as the replies: a `Waiting` snapshot while legs are still outstanding, then
the `Finished` final reply. After a restart `load` brings the waiting ones back, and a
finished reply is looked up (`lookup`, the loop's on-disk store) to answer a resubmitted
mid: nothing finished is kept in RAM, so the table's memory is only what still waits.
Cost stays flat under load: deadlines sit in a heap (a tick looks only at what is due).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from switch.contract.internal import (
    Decision,
    DuplicateNotice,
    Finished,
    LegAnswer,
    Manifest,
    Waiting,
)
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


@dataclass(slots=True)
class Tx:
    manifest: Manifest
    partition: int
    offset: int = 0  # the manifest's offset in responses
    start: float = 0.0  # the manifest's broker append time
    answers: dict[str, LegAnswer] = field(default_factory=dict)
    first_sent: bool = False
    missing: dict[str, str] = field(default_factory=dict)
    supplemented: set[str] = field(default_factory=set)
    held: list[DuplicateNotice] = field(default_factory=list)
    grace_until: float | None = None

    @property
    def complete(self) -> bool:
        return all(s in self.answers for s in self.manifest.expected)

    def outstanding(self, status: str) -> bool:
        return any(v == status and s not in self.answers for s, v in self.missing.items())


@dataclass(frozen=True)
class Emit:
    """A reply to send, and where to."""

    reply: Reply
    topic: str | None  # the request's reply_to, else None for the default replies topic
    cid: str
    traceparent: str | None = None  # the trace the reply belongs to (switch/tracing.py)
    principal: str | None = None  # who sent the request, for the audit entry


@dataclass
class Counters:
    replies: int = 0
    supplements: int = 0
    timeouts: int = 0
    late: int = 0
    duplicate_answers: int = 0
    orphans: int = 0
    duplicates: int = 0
    swept: int = 0


class PendingTable:
    def __init__(
        self, *, late_grace_s: float = LATE_GRACE_S,
        lookup: Callable[[str], Finished | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.txs: dict[str, Tx] = {}
        # Finished in this step, not yet in the loop's store (moved there after the commit).
        self.recent: dict[str, tuple[int, Finished]] = {}
        self.late_grace_s = late_grace_s
        self.counters = Counters()
        self.events: list[tuple[str, str, str]] = []  # (kind, cid, detail), for the log
        self._lookup = lookup or (lambda cid: None)
        self._clock = clock  # the loop gives its BrokerClock's now
        self._deadlines: list[tuple[float, str]] = []
        self._graces: list[tuple[float, str]] = []
        self._changed: set[str] = set()

    def __len__(self) -> int:
        return len(self.txs)

    @property
    def open_count(self) -> int:
        return len(self.txs)

    def finished(self, cid: str) -> Finished | None:
        got = self.recent.get(cid)
        return got[1] if got is not None else self._lookup(cid)

    # ------------------------------------------------------------------ inputs

    def on_manifest(
        self, m: Manifest, partition: int, *, offset: int = 0, start: float | None = None
    ) -> list[Emit]:
        """`start`: the manifest's broker append time (default: the router's `created`)."""
        if m.cid in self.txs or self.finished(m.cid) is not None:
            self._note("duplicate_manifest", m.cid, "")
            return []
        start = m.created if start is None else start
        self.txs[m.cid] = Tx(manifest=m, partition=partition, offset=offset, start=start)
        heapq.heappush(self._deadlines, (start + m.timeout_s, m.cid))
        return []

    def on_answer(self, a: LegAnswer, now: float | None = None) -> list[Emit]:
        tx = self.txs.get(a.cid)
        if tx is None:
            if self.finished(a.cid) is not None:
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
        now = self._clock() if now is None else now
        if not tx.first_sent:
            return self._first(tx, {}, now) if tx.complete else []
        self._changed.add(tx.manifest.cid)
        self.counters.late += 1
        self._note("late", a.cid, a.system)
        emits = []
        if a.system in tx.missing and a.system not in tx.supplemented:
            emits.append(self._supplement(tx, a.system))
        self._maybe_finish(tx, now)
        return emits

    def on_duplicate(self, n: DuplicateNotice) -> list[Emit]:
        self.counters.duplicates += 1
        tx = self.txs.get(n.cid)
        if tx is not None and (n.ori is None or n.ori == tx.manifest.ori):
            if not tx.first_sent:
                tx.held.append(n)
                return []
            return [self._duplicate(tx, n)]
        done = self.finished(n.cid)
        if done is not None and (n.ori is None or n.ori == done.ori):
            original = reply_decoder.decode(done.reply)
            reply = msgspec.structs.replace(original, duplicate=True, supplement=False,
                                            ts=now_rfc3339())
            return [Emit(reply, n.reply_to or done.reply_to, n.cid, principal=n.principal)]
        err = FieldError(
            field="mid", code=Codes.DUPLICATE_MID,
            text=f"REJECT DUPLICATE MID/{n.mid}: THE ORIGINAL REPLY IS NO LONGER HELD; "
            "RESUBMIT WITH A NEW MID",
        )
        reply = reject_reply(cid=n.cid, mid=n.mid, ori=n.ori, mke=None, errors=[err], echo="")
        return [Emit(reply, n.reply_to, n.cid, principal=n.principal)]

    def on_decision(self, d: Decision) -> None:
        """Replay of an old log: a reply recorded by `d` was sent before the upgrade."""
        tx = self.txs.get(d.cid)
        if tx is None:
            return
        if d.event == "first":
            tx.first_sent = True
            tx.missing = dict(d.missing)
            tx.held.clear()  # held duplicates were answered with the first reply
        elif d.event == "supplement" and d.leg:
            tx.supplemented.add(d.leg)
        self._changed.add(d.cid)
        self._maybe_finish(tx, d.ts or self._clock())

    def load(self, w: Waiting, partition: int) -> None:
        """Restore: a waiting transaction from the changelog (its first reply was sent)."""
        m = w.manifest
        tx = Tx(manifest=m, partition=partition, offset=w.offset, start=w.start,
                answers={a.system: a for a in w.answers}, first_sent=True,
                missing=dict(w.missing), supplemented=set(w.supplemented),
                grace_until=w.grace_until)
        self.txs[m.cid] = tx
        if tx.grace_until is not None:
            heapq.heappush(self._graces, (tx.grace_until, m.cid))

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

    def checkpoint(self, partition: int, next_offset: int) -> int:
        """Where a restore of `partition` must start replaying responses: the lowest offset
        of a manifest still without its first reply, else `next_offset` (committed)."""
        waiting = [tx.offset for tx in self.txs.values()
                   if tx.partition == partition and not tx.first_sent]
        return min([*waiting, next_offset])

    @property
    def changed(self) -> bool:
        """Whether `take_changes` has anything to give."""
        return bool(self._changed)

    def take_changes(self) -> list[tuple[int, str, Waiting | Finished]]:
        """The changelog records (partition, cid, record) for what changed since the last
        call: a snapshot of each transaction still waiting after its first reply, the
        final reply of each one finished."""
        out: list[tuple[int, str, Waiting | Finished]] = []
        for cid in sorted(self._changed):
            tx = self.txs.get(cid)
            if tx is not None:
                if tx.first_sent:
                    out.append((tx.partition, cid, Waiting(
                        manifest=tx.manifest, start=tx.start, offset=tx.offset,
                        answers=list(tx.answers.values()), missing=dict(tx.missing),
                        supplemented=sorted(tx.supplemented), grace_until=tx.grace_until)))
            elif cid in self.recent:
                partition, fin = self.recent[cid]
                out.append((partition, cid, fin))
        self._changed.clear()
        return out

    def stored(self, cids: list[str]) -> None:
        """The loop's store now holds these finished replies: forget them here."""
        for cid in cids:
            self.recent.pop(cid, None)

    def drop_partitions(self, partitions: set[int]) -> None:
        for cid, tx in list(self.txs.items()):
            if tx.partition in partitions:
                del self.txs[cid]
        for cid, (p, _) in list(self.recent.items()):
            if p in partitions:
                del self.recent[cid]

    # ------------------------------------------------------------------ internals

    def _first(self, tx: Tx, missing: dict[str, str], now: float) -> list[Emit]:
        tx.first_sent = True
        tx.missing = missing
        self._changed.add(tx.manifest.cid)
        reply = build_reply(tx.manifest, tx.answers, missing)
        self.counters.replies += 1
        emits = [Emit(reply, tx.manifest.reply_to, tx.manifest.cid, tx.manifest.traceparent,
                      tx.manifest.principal)]
        for n in tx.held:
            emits.append(self._duplicate(tx, n))
        tx.held.clear()
        self._maybe_finish(tx, now, reply)
        return emits

    def _supplement(self, tx: Tx, leg: str) -> Emit:
        tx.supplemented.add(leg)
        still = self._still_missing(tx)
        reply = build_reply(tx.manifest, tx.answers, still, supplement=True)
        self.counters.supplements += 1
        return Emit(reply, tx.manifest.reply_to, tx.manifest.cid, tx.manifest.traceparent,
                    tx.manifest.principal)

    def _duplicate(self, tx: Tx, n: DuplicateNotice) -> Emit:
        reply = build_reply(tx.manifest, tx.answers, self._still_missing(tx), duplicate=True)
        return Emit(reply, n.reply_to or tx.manifest.reply_to, tx.manifest.cid,
                    tx.manifest.traceparent, n.principal)

    @staticmethod
    def _still_missing(tx: Tx) -> dict[str, str]:
        return {s: v for s, v in tx.missing.items() if s not in tx.answers}

    def _maybe_finish(self, tx: Tx, now: float, reply: Reply | None = None) -> None:
        """Finished once replied with no QUEUED leg outstanding; a TIMEOUT query leg keeps
        the entry open for a grace period, in which its late answer gets a supplement."""
        if not tx.first_sent or tx.outstanding(QUEUED):
            return
        if tx.outstanding(TIMEOUT):
            if tx.grace_until is None:
                tx.grace_until = now + self.late_grace_s
                heapq.heappush(self._graces, (tx.grace_until, tx.manifest.cid))
            return
        self._finish(tx, now, reply)

    def _finish(self, tx: Tx, now: float, reply: Reply | None = None) -> None:
        cid = tx.manifest.cid
        if reply is None or reply.supplement:
            reply = build_reply(tx.manifest, tx.answers, self._still_missing(tx))
        del self.txs[cid]
        m = tx.manifest
        self.recent[cid] = (tx.partition, Finished(
            cid=cid, ori=m.ori, mid=m.mid, reply=msgspec.Raw(encode(reply)),
            reply_to=m.reply_to, done_at=now))
        self._changed.add(cid)

    def _note(self, kind: str, cid: str, detail: str) -> None:
        self.events.append((kind, cid, detail))
