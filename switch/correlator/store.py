"""The correlator's local cache of its changelog (`<prefix>.correlator`), in SQLite.

Finished replies are kept on disk, not in RAM, for the whole mid retention, so the
correlator's memory stays flat however many replies a day brings; waiting transactions
and each partition's checkpoint are kept here too. Like the router's mid memory it is a
cache of a compacted topic: with each change it records how far into each partition of
the changelog it has seen, so a restart reads only the changelog's tail (all of it for a
partition it has never seen, or when the file is new or lost).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from switch.contract.internal import (
    CHECKPOINT_KEY,
    Checkpoint,
    Finished,
    Waiting,
    changelog_decoder,
)

_waiting_decoder = msgspec.json.Decoder(Waiting)
_finished_decoder = msgspec.json.Decoder(Finished)


class ReplyStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is read again from the topic
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS finished (
                cid TEXT PRIMARY KEY, partition INTEGER NOT NULL, done_at REAL NOT NULL,
                value BLOB NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS finished_done ON finished (done_at);
            CREATE TABLE IF NOT EXISTS waiting (
                cid TEXT PRIMARY KEY, partition INTEGER NOT NULL, value BLOB NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS checkpoint (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS seen (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS committed (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
            """
        )

    def close(self) -> None:
        self._db.close()

    def apply(
        self, records: list[tuple[int, str, bytes | None]], seen: dict[int, int] | None = None
    ) -> None:
        """Apply changelog records (partition, key, value; None is a tombstone) and, in the
        same SQLite transaction, how far each changelog partition has been seen."""
        with self._db:
            self._db.execute("BEGIN")
            for partition, key, value in records:
                self._apply_one(partition, key, value)
            for partition, nxt in (seen or {}).items():
                self._db.execute(
                    "INSERT INTO seen (partition, next) VALUES (?, ?) ON CONFLICT (partition) "
                    "DO UPDATE SET next = max(next, excluded.next)",
                    (partition, nxt),
                )

    def _apply_one(self, partition: int, key: str, value: bytes | None) -> None:
        db = self._db
        if value is None:
            db.execute("DELETE FROM finished WHERE cid = ?", (key,))
            db.execute("DELETE FROM waiting WHERE cid = ?", (key,))
            return
        try:
            rec = changelog_decoder.decode(value)
        except msgspec.DecodeError:
            return
        if isinstance(rec, Checkpoint):
            if key == CHECKPOINT_KEY:
                db.execute("INSERT OR REPLACE INTO checkpoint (partition, offset) VALUES (?, ?)",
                           (partition, rec.offset))
                if rec.committed is not None:
                    db.execute("INSERT OR REPLACE INTO committed (partition, next) VALUES (?, ?)",
                               (partition, rec.committed))
        elif isinstance(rec, Finished):
            db.execute("DELETE FROM waiting WHERE cid = ?", (key,))
            db.execute("INSERT OR REPLACE INTO finished (cid, partition, done_at, value) "
                       "VALUES (?, ?, ?, ?)", (key, partition, rec.done_at, value))
        else:
            db.execute("DELETE FROM finished WHERE cid = ?", (key,))
            db.execute("INSERT OR REPLACE INTO waiting (cid, partition, value) VALUES (?, ?, ?)",
                       (key, partition, value))

    def finished(self, cid: str) -> Finished | None:
        row = self._db.execute("SELECT value FROM finished WHERE cid = ?", (cid,)).fetchone()
        return _finished_decoder.decode(row[0]) if row else None

    def finished_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM finished").fetchone()[0])

    def waiting(self, partitions: set[int]) -> list[tuple[int, Waiting]]:
        out = []
        for p in sorted(partitions):
            for (value,) in self._db.execute("SELECT value FROM waiting WHERE partition = ?", (p,)):
                out.append((p, _waiting_decoder.decode(value)))
        return out

    def checkpoint(self, partition: int) -> int | None:
        row = self._db.execute("SELECT offset FROM checkpoint WHERE partition = ?",
                               (partition,)).fetchone()
        return int(row[0]) if row else None

    def committed(self, partition: int) -> int | None:
        """The responses offset the last changelog checkpoint was committed with."""
        row = self._db.execute("SELECT next FROM committed WHERE partition = ?",
                               (partition,)).fetchone()
        return int(row[0]) if row else None

    def seen(self) -> dict[int, int]:
        return {int(p): int(n) for p, n in self._db.execute("SELECT partition, next FROM seen")}

    def forget_partition(self, partition: int) -> None:
        """The changelog partition was recreated (its end is before what was seen): read
        it whole again."""
        with self._db:
            self._db.execute("BEGIN")
            for table in ("finished", "waiting", "checkpoint", "seen", "committed"):
                self._db.execute(f"DELETE FROM {table} WHERE partition = ?", (partition,))

    def expired(self, before: float, partitions: set[int], limit: int = 2000) -> list[tuple[str, int]]:
        """Finished entries done before `before` in `partitions`: (cid, partition), oldest first."""
        if not partitions:
            return []
        marks = ",".join("?" * len(partitions))
        rows = self._db.execute(
            f"SELECT cid, partition FROM finished WHERE done_at < ? AND partition IN ({marks}) "
            "ORDER BY done_at LIMIT ?", (before, *sorted(partitions), limit),
        )
        return [(str(c), int(p)) for c, p in rows]
