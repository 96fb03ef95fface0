"""The router's memory of `mid`s: the idempotency key of CONTRACT.md.

A resubmitted mid with the same content is a duplicate (answered with the original
reply); with different content it is a DUPLICATE_MID reject. Mids are scoped by ORI
(key `ORI/mid`, see `mid_key`): agency B's first use of a mid that agency A used is a
new request, and nobody is ever answered with another agency's reply. The memory is
rebuilt at start-up from the compacted `<prefix>.mids` topic, written in the same Kafka
transaction as the request's manifest, so it survives restarts.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from switch.contract.messages import AnyRequest, encode


def mid_key(ori: str, mid: str) -> str:
    """The memory's key, and the `<prefix>.mids` record key: `ORI/mid` ('/' occurs in
    neither). A record written before mids were scoped (key: the mid alone) never matches."""
    return f"{ori}/{mid}"


class MidRecord(msgspec.Struct, kw_only=True, frozen=True):
    """Value of a `<prefix>.mids` record, keyed by `ORI/mid`."""

    fp: str  # content fingerprint
    cid: str
    ts: float  # epoch seconds when first seen


mid_record_decoder = msgspec.json.Decoder(MidRecord)

MARK_PREFIX = "~next/"  # no ORI starts with '~'


class OffsetMark(msgspec.Struct, kw_only=True, frozen=True):
    """Value of a `<prefix>.mids` record keyed `~next/<topic>` in partition p: the next
    offset of partition p of that input topic, written in every router transaction that
    consumes it. A new owner of p restores the mids of p, which waits for any transaction
    still open there (read_committed), and starts at least at the mark: so it never reads
    an offset older than a transaction that committed, whatever the group coordinator
    answered before that commit was complete."""

    next: int


offset_mark_decoder = msgspec.json.Decoder(OffsetMark)


def mark_key(topic: str) -> str:
    return MARK_PREFIX + topic


def fingerprint(request: AnyRequest) -> str:
    """The request's content, without where the reply goes or who typed it."""
    core = msgspec.structs.replace(request, reply_to=None, term=None)
    return hashlib.sha256(encode(core)).hexdigest()[:32]


@dataclass(frozen=True)
class Seen:
    verdict: Literal["new", "duplicate", "conflict"]
    cid: str | None = None


class MidMemory:
    """`ORI/mid` (`mid_key`) -> (fingerprint, cid, first seen), kept for `retention_s`.

    On disk (SQLite, `path`), not in RAM, so the router's memory stays flat however many
    mids a day brings. It is a cache of the `<prefix>.mids` topic: it records, with each
    change, how far into each partition of that topic it has seen, and the router replays
    the topic from there at start-up (all of it when the file is new or lost).
    """

    def __init__(self, retention_s: float, path: Path | str = ":memory:") -> None:
        self.retention_s = retention_s
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is replayed from the topic
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS mids (
                mid TEXT PRIMARY KEY, fp TEXT NOT NULL, cid TEXT NOT NULL, ts REAL NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS mids_ts ON mids (ts);
            CREATE TABLE IF NOT EXISTS seen (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS marks (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, next INTEGER NOT NULL,
                PRIMARY KEY (topic, partition)
            ) WITHOUT ROWID;
            """
        )

    def close(self) -> None:
        self._db.close()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM mids").fetchone()[0])

    def check(self, mid: str, fp: str, now: float) -> Seen:
        row = self._db.execute("SELECT fp, cid, ts FROM mids WHERE mid = ?", (mid,)).fetchone()
        if row is None or now - row[2] > self.retention_s:
            return Seen("new")
        if row[0] == fp:
            return Seen("duplicate", row[1])
        return Seen("conflict", row[1])

    def remember(self, mid: str, rec: MidRecord) -> None:
        self.remember_many([(mid, rec)])

    def remember_many(
        self, items: list[tuple[str, MidRecord]], seen: dict[int, int] | None = None,
        marks: dict[tuple[str, int], int] | None = None,
    ) -> None:
        """Store mids and, in the same SQLite transaction, how far the topic was seen (and
        the input offsets the router committed with them: `OffsetMark`)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO mids (mid, fp, cid, ts) VALUES (?, ?, ?, ?)",
                [(m, r.fp, r.cid, r.ts) for m, r in items],
            )
            for partition, nxt in (seen or {}).items():
                self._db.execute(
                    "INSERT INTO seen (partition, next) VALUES (?, ?) ON CONFLICT (partition) "
                    "DO UPDATE SET next = max(next, excluded.next)",
                    (partition, nxt),
                )
            for (topic, partition), nxt in (marks or {}).items():
                self._db.execute(
                    "INSERT INTO marks (topic, partition, next) VALUES (?, ?, ?) ON CONFLICT "
                    "(topic, partition) DO UPDATE SET next = max(next, excluded.next)",
                    (topic, partition, nxt),
                )

    def mark(self, topic: str, partition: int) -> int | None:
        """The next offset of `topic`/`partition` that the last committed router transaction
        that consumed it recorded (None: never seen)."""
        row = self._db.execute("SELECT next FROM marks WHERE topic = ? AND partition = ?",
                               (topic, partition)).fetchone()
        return None if row is None else int(row[0])

    def forget_partition(self, partition: int) -> None:
        """The mids topic was recreated: read partition `partition` again from its start
        (its mids stay: still right for a resubmission within the retention)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM seen WHERE partition = ?", (partition,))

    def seen(self) -> dict[int, int]:
        return {int(p): int(n) for p, n in self._db.execute("SELECT partition, next FROM seen")}

    def expire(self, now: float) -> int:
        cur = self._db.execute("DELETE FROM mids WHERE ts < ?", (now - self.retention_s,))
        return int(cur.rowcount)
