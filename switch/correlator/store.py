"""The correlator's local cache of its changelog (`<prefix>.correlator`), in SQLite.

Finished replies are kept on disk, not in RAM, for the whole mid retention, so the
correlator's memory stays flat however many replies a day brings; waiting transactions
and each partition's checkpoint are kept here too. Like the router's mid memory it is a
cache of a compacted topic: with each change it records how far into each partition of
the changelog it has seen, so a restart reads only the changelog's tail (all of it for a
partition it has never seen, or when the file is new or lost).

A finished reply's images are kept once per partition by their SHA-256 (`images`, see
switch/correlator/images.py), not with every reply: each image's `last_done` is the
newest finished reply naming it, and an image is swept (a tombstone) once no finished
reply that could name it is left.
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import msgspec

from switch.contract.internal import (
    CHECKPOINT_KEY,
    Checkpoint,
    Finished,
    Waiting,
    changelog_decoder,
)
from switch.contract.messages import encode
from switch.correlator.images import digest_of_key, image_key, join, split

# 2: replies kept without their images, zlib-compressed (a reply without its photos is
# mostly repeated JSON field names: ~4x smaller), in a rowid table (a row of a few KB fits
# in its leaf page, where WITHOUT ROWID put all but ~1 KB of it on an overflow page of
# its own, half of it empty); 1 (no user_version): replies with their images inline.
FORMAT = 2
_TABLES = ("finished", "waiting", "checkpoint", "seen", "committed", "images")

_waiting_decoder = msgspec.json.Decoder(Waiting)
_finished_decoder = msgspec.json.Decoder(Finished)


class ReplyStore:
    def __init__(self, path: Path | str = ":memory:") -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is read again from the topic
        if int(self._db.execute("PRAGMA user_version").fetchone()[0]) < FORMAT:
            # An older layout: dropped, and read again from the changelog (all of it, once).
            with self._db:
                self._db.execute("BEGIN")
                for table in _TABLES:
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
                self._db.execute(f"PRAGMA user_version = {FORMAT}")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS finished (
                cid TEXT PRIMARY KEY, partition INTEGER NOT NULL, done_at REAL NOT NULL,
                value BLOB NOT NULL
            );
            CREATE INDEX IF NOT EXISTS finished_done ON finished (done_at);
            CREATE INDEX IF NOT EXISTS finished_partition_done ON finished (partition, done_at);
            CREATE TABLE IF NOT EXISTS waiting (
                cid TEXT PRIMARY KEY, partition INTEGER NOT NULL, value BLOB NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS checkpoint (partition INTEGER PRIMARY KEY, offset INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS seen (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS committed (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS images (
                partition INTEGER NOT NULL, sha TEXT NOT NULL, data BLOB NOT NULL,
                last_done REAL NOT NULL DEFAULT 0, UNIQUE (partition, sha)
            );
            CREATE INDEX IF NOT EXISTS images_done ON images (partition, last_done);
            """
        )
        # (partition, sha) named by changelog records staged but not yet applied: the
        # step that stages them must not sweep them. Cleared when records are applied.
        self._staged: set[tuple[int, str]] = set()

    def close(self) -> None:
        self._db.close()

    def apply(
        self, records: list[tuple[int, str, bytes | None]], seen: dict[int, int] | None = None
    ) -> None:
        """Apply changelog records (partition, key, value; None is a tombstone) and, in the
        same SQLite transaction, how far each changelog partition has been seen."""
        self._staged.clear()
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
        digest = digest_of_key(key)
        if digest is not None:
            if value is None:
                db.execute("DELETE FROM images WHERE partition = ? AND sha = ?", (partition, digest))
            else:
                db.execute("INSERT INTO images (partition, sha, data) VALUES (?, ?, ?) "
                           "ON CONFLICT (partition, sha) DO UPDATE SET data = excluded.data",
                           (partition, digest, value))
            return
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
                       "VALUES (?, ?, ?, ?)", (key, partition, rec.done_at, zlib.compress(value, 6)))
            for d in set(rec.images or ()):
                db.execute("UPDATE images SET last_done = max(last_done, ?) "
                           "WHERE partition = ? AND sha = ?", (rec.done_at, partition, d))
        else:
            db.execute("DELETE FROM finished WHERE cid = ?", (key,))
            db.execute("INSERT OR REPLACE INTO waiting (cid, partition, value) VALUES (?, ?, ?)",
                       (key, partition, value))

    def finished(self, cid: str) -> Finished | None:
        """The finished reply of `cid` as it was sent, images included."""
        row = self._db.execute("SELECT value, partition FROM finished WHERE cid = ?",
                               (cid,)).fetchone()
        if row is None:
            return None
        fin = _finished_decoder.decode(zlib.decompress(row[0]))
        if fin.images is None:
            return fin
        blobs = {}
        for d in set(fin.images):
            got = self._db.execute("SELECT data FROM images WHERE partition = ? AND sha = ?",
                                   (row[1], d)).fetchone()
            if got is not None:
                blobs[d] = bytes(got[0])
        reply = join(bytes(fin.reply), fin.images, blobs)
        return msgspec.structs.replace(fin, reply=msgspec.Raw(encode(reply)), images=None)

    def changelog_records(
        self, partition: int, cid: str, record: Waiting | Finished
    ) -> list[tuple[str, bytes]]:
        """The changelog records (key, value) that keep `record`: a finished reply without
        its image bytes, preceded by each of its images this partition does not hold yet."""
        if not isinstance(record, Finished) or record.images is not None:
            return [(cid, msgspec.json.encode(record))]
        parts = split(bytes(record.reply))
        if parts is None:
            return [(cid, msgspec.json.encode(record))]
        slim, digests, blobs = parts
        out: list[tuple[str, bytes]] = []
        for d, data in blobs.items():
            if (partition, d) not in self._staged and not self._has_image(partition, d):
                out.append((image_key(d), data))
            self._staged.add((partition, d))
        fin = msgspec.structs.replace(record, reply=msgspec.Raw(slim), images=digests)
        out.append((cid, msgspec.json.encode(fin)))
        return out

    def _has_image(self, partition: int, digest: str) -> bool:
        return self._db.execute("SELECT 1 FROM images WHERE partition = ? AND sha = ?",
                                (partition, digest)).fetchone() is not None

    def image_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0])

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
            for table in _TABLES:
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

    def expired_images(self, before: float, partitions: set[int], limit: int = 2000) -> list[tuple[str, int]]:
        """Image records no finished reply can name any more: (key, partition). An image
        is named only by finished replies done at or before its `last_done`; it goes once
        that is before `before` (the retention) and before every finished reply still
        held (so not before the sweep of the last reply naming it has been applied), and
        is not named by a record staged but not yet applied."""
        out: list[tuple[str, int]] = []
        for p in sorted(partitions):
            oldest = self._db.execute("SELECT min(done_at) FROM finished WHERE partition = ?",
                                      (p,)).fetchone()[0]
            edge = before if oldest is None else min(before, float(oldest))
            rows = self._db.execute(
                "SELECT sha FROM images WHERE partition = ? AND last_done < ? LIMIT ?",
                (p, edge, limit - len(out)))
            out.extend((image_key(str(d)), p) for (d,) in rows if (p, str(d)) not in self._staged)
            if len(out) >= limit:
                break
        return out
