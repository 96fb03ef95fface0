"""A system of record's store: SQLite in WAL mode, one file per system.

LEADS holds every record (SOR and VOAY); NCIC holds the SOR records only, under their
NIC, and knows their LNO too. Images are keyed by a surrogate id: an IMN names one
*active* image (a partial unique index enforces it), while a cancelled image keeps its
IMN for the record, so a VOAY sequence digit may be used again later.

`applied` maps a correlation id to the answer given, written in the same SQLite
transaction as the change it answers; a redelivered leg request therefore changes
nothing and gets the stored answer back.

Schema changes are numbered migrations tracked in `PRAGMA user_version`.

Memory: the page cache of a serving store is bounded (SERVE_CACHE_KIB); seeding raises it
for the bulk insert only (SEED_CACHE_KIB), then gives it back. A service's RSS therefore
stops growing once its cache is full (RELIABILITY.md, "Soak").

A full disk (SQLite's SQLITE_FULL, "database or disk is full") is raised as `StoreFull`
from `transaction()`, after the whole transaction is rolled back: nothing of it is
stored, so nothing of it may be answered. The service waits and retries (storefull.py).

Fault-injection knobs (for tests and drills only, never for production; read once when
the store opens):
- SWITCH_FAULT_STORE_COMMIT_DELAY_S=S: every commit of an outer transaction first
  blocks S seconds, as a slow disk's fsync blocks the process.
- SWITCH_FAULT_STORE_QUOTA=FILE: before each outer transaction, FILE (if it exists and
  holds a number) is read as the most pages the database may have (`PRAGMA
  max_page_count`); SQLite then fails with SQLITE_FULL exactly as on a full disk. Raise
  or delete the number and the "disk" has room again. For machines where a small
  filesystem cannot be mounted.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from switch.contract.internal import RecordEntry
from switch.errors import SwitchError

ACTIVE = "active"

# Page cache of a serving store (KiB). SQLite's default is 2000; a little more keeps the
# records' indexes warm. The OS page cache holds the rest of the file anyway.
SERVE_CACHE_KIB = 4096
# ... while seeding: 100,000 records into random-keyed indexes run about twice as fast
# with 32 MiB as with the 2 MiB default.
SEED_CACHE_KIB = 32768

COMMIT_DELAY_ENV = "SWITCH_FAULT_STORE_COMMIT_DELAY_S"
QUOTA_ENV = "SWITCH_FAULT_STORE_QUOTA"
CANCELLED = "cancelled"

# Each entry moves the schema from version i to i + 1. Never edit a released one:
# append a new migration instead.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE records (
        lno   TEXT PRIMARY KEY,
        rtype TEXT NOT NULL CHECK (rtype IN ('SOR', 'VOAY')),
        nic   TEXT UNIQUE,
        ori   TEXT NOT NULL,
        nam   TEXT,
        sex   TEXT,
        dob   TEXT
    );
    CREATE INDEX records_nam_sex_dob ON records (nam, sex, dob);
    CREATE TABLE images (
        id        INTEGER PRIMARY KEY,
        imn       TEXT NOT NULL,
        lno       TEXT NOT NULL REFERENCES records (lno),
        imt       TEXT NOT NULL,
        doi       TEXT NOT NULL,
        mis       TEXT,
        jpeg      BLOB NOT NULL,
        sha256    TEXT NOT NULL,
        status    TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
        entered   TEXT NOT NULL,
        modified  TEXT,
        cancelled TEXT,
        doc       TEXT,
        cid       TEXT
    );
    CREATE UNIQUE INDEX images_active_imn ON images (imn) WHERE status = 'active';
    CREATE INDEX images_imn ON images (imn);
    CREATE INDEX images_lno ON images (lno, status);
    CREATE TABLE applied (
        cid     TEXT PRIMARY KEY,
        answer  BLOB NOT NULL,
        applied REAL NOT NULL
    );
    CREATE INDEX applied_when ON applied (applied);
    """,
    # The changelog outbox (services/changelog.py): every change to a row, written by
    # triggers in the transaction that makes it, waits here until the changelog topic has
    # it. Rows already on file are queued once.
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tbl TEXT NOT NULL CHECK (tbl IN ('r', 'i', 'a')),
        pk  TEXT NOT NULL
    );
    CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    CREATE TRIGGER records_out AFTER INSERT ON records
        BEGIN INSERT INTO outbox (tbl, pk) VALUES ('r', NEW.lno); END;
    CREATE TRIGGER images_out_i AFTER INSERT ON images
        BEGIN INSERT INTO outbox (tbl, pk) VALUES ('i', NEW.id); END;
    CREATE TRIGGER images_out_u AFTER UPDATE ON images
        BEGIN INSERT INTO outbox (tbl, pk) VALUES ('i', NEW.id); END;
    CREATE TRIGGER applied_out_i AFTER INSERT ON applied
        BEGIN INSERT INTO outbox (tbl, pk) VALUES ('a', NEW.cid); END;
    CREATE TRIGGER applied_out_d AFTER DELETE ON applied
        BEGIN INSERT INTO outbox (tbl, pk) VALUES ('a', OLD.cid); END;
    INSERT INTO outbox (tbl, pk) SELECT 'r', lno FROM records ORDER BY rowid;
    INSERT INTO outbox (tbl, pk) SELECT 'i', id FROM images ORDER BY id;
    INSERT INTO outbox (tbl, pk) SELECT 'a', cid FROM applied ORDER BY rowid;
    INSERT INTO meta (name, value) SELECT 'bulk_upto', coalesce(max(seq), 0) FROM outbox;
    """,
)

# The changelog's tables: key letter -> (table, primary key, every column).
CHANGE_TABLES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "r": ("records", "lno", ("lno", "rtype", "nic", "ori", "nam", "sex", "dob")),
    "i": ("images", "id", ("id", "imn", "lno", "imt", "doi", "mis", "jpeg", "sha256", "status",
                           "entered", "modified", "cancelled", "doc", "cid")),
    "a": ("applied", "cid", ("cid", "answer", "applied")),
}
POSITION = "changelog_position"  # meta: the next changelog offset this store has not read


class StoreError(SwitchError):
    """The store cannot be opened or its schema is newer than this code."""


class StoreFull(StoreError):
    """The store's disk (or its quota) is full: the transaction was rolled back whole."""

    def __init__(self, path: Path, cause: BaseException) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


def is_full(exc: BaseException) -> bool:
    """True for SQLite's SQLITE_FULL ("database or disk is full")."""
    if isinstance(exc, StoreFull):
        return True
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_FULL)
    return "database or disk is full" in str(exc)


def sqlite_memory_used() -> int:
    """Bytes SQLite has allocated in this process (sqlite3_memory_used), or -1 if unknown."""
    try:
        import _sqlite3
        import ctypes

        fn = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
        fn.restype = ctypes.c_int64
        return int(fn())
    except Exception:
        return -1


@dataclass(frozen=True, slots=True)
class ImageRow:
    id: int
    imn: str
    lno: str
    imt: str
    doi: str
    mis: str | None
    jpeg: bytes
    sha256: str
    status: str
    entered: str
    modified: str | None
    cancelled: str | None
    doc: str | None


_IMAGE_COLUMNS = "id, imn, lno, imt, doi, mis, jpeg, sha256, status, entered, modified, cancelled, doc"
_RECORD_COLUMNS = "lno, rtype, ori, nic, nam, sex, dob"


def _record(row: tuple[str, ...]) -> RecordEntry:
    lno, rtype, ori, nic, nam, sex, dob = row
    return RecordEntry(lno=lno, rtype=rtype, ori=ori, nic=nic, nam=nam, sex=sex, dob=dob)


def _image(row: tuple[object, ...]) -> ImageRow:
    return ImageRow(*row)  # type: ignore[arg-type]


class Store:
    """One system's records, images and applied answers.

    Not thread-safe; one per process (SQLite's own locking keeps several processes
    on one file consistent, e.g. `switch seed` while a service runs).
    """

    def __init__(
        self,
        path: Path | str,
        system: str,
        *,
        busy_timeout_s: float = 10.0,
        cache_kib: int = SERVE_CACHE_KIB,
        env: dict[str, str] | None = None,
    ) -> None:
        self.system = system.upper()
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN/SAVEPOINT below).
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_s)
        self._depth = 0
        self._changes_at_begin = 0
        self.wrote = False  # whether the last outer transaction committed any change
        self._cache_kib = cache_kib
        knobs = os.environ if env is None else env
        self.commit_delay_s = float(knobs.get(COMMIT_DELAY_ENV) or 0.0)
        quota = knobs.get(QUOTA_ENV)
        self.quota_file = Path(quota) if quota else None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL (WAL: no sync per commit, only at checkpoints): a commit survives the
            # process being killed, and a power loss can only lose the last ones. No
            # answer depends on them: its changes reach the changelog topic before it is
            # sent (changelog.py), and a store catches up from there, from the position
            # it recorded, when its service gets the partition. FULL cost one sync per
            # commit, that is per partition of every batch, blocking the event loop.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute(f"PRAGMA cache_size=-{int(cache_kib)}")
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        version = self.schema_version
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this program "
                f"({len(MIGRATIONS)}); upgrade the switch"
            )
        for number in range(version, len(MIGRATIONS)):
            # executescript commits first; the script and the version bump are one transaction.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[number]}\nPRAGMA user_version={number + 1};\nCOMMIT;"
            )

    @contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[None]:
        """All or nothing. Nests: an inner block is a savepoint of the outer one.

        A full disk anywhere in it (or at its commit) rolls the whole outer transaction
        back and raises `StoreFull`, inner blocks included: a caller that catches errors
        of one request must let this one through, since none of the batch is stored."""
        name = f"sp{self._depth}"
        if self._depth == 0:
            if self.quota_file is not None:
                self._apply_quota()
            self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            self._changes_at_begin = self._db.total_changes
            self.wrote = False
        else:
            self._db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._rollback()
            else:
                try:
                    self._db.execute(f"ROLLBACK TO {name}")
                    self._db.execute(f"RELEASE {name}")
                except sqlite3.Error:
                    if not is_full(exc):  # on a full disk SQLite may have rolled back all
                        raise
            if is_full(exc) and not isinstance(exc, StoreFull):
                raise StoreFull(self.path, exc) from exc
            raise
        self._depth -= 1
        if self._depth == 0:
            try:
                if self.commit_delay_s > 0:
                    time.sleep(self.commit_delay_s)  # fault injection: a slow disk blocks
                self._db.execute("COMMIT")
                self.wrote = self._db.total_changes != self._changes_at_begin
            except BaseException as exc:
                # A failed COMMIT may leave the transaction open (SQLite's advice: roll
                # back explicitly), else every later BEGIN would fail.
                self._rollback()
                if is_full(exc):
                    raise StoreFull(self.path, exc) from exc
                raise
        else:
            self._db.execute(f"RELEASE {name}")

    def _rollback(self) -> None:
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled it back itself

    def _apply_quota(self) -> None:
        """Fault injection: the most pages the database may have, from the quota file."""
        assert self.quota_file is not None
        try:
            text = self.quota_file.read_text().strip()
        except OSError:
            text = ""
        pages = int(text) if text.isdigit() else 1 << 30  # no number: SQLite's default
        self._db.execute(f"PRAGMA max_page_count={pages}")

    def page_count(self) -> int:
        return int(self._db.execute("PRAGMA page_count").fetchone()[0])

    # ----------------------------------------------------------------- records

    def insert_records(self, entries: Iterable[RecordEntry]) -> int:
        """Insert records, ignoring any already on file; return how many were new."""
        rows = (
            (e.lno, e.rtype, e.nic, e.ori, e.nam, e.sex, e.dob)
            for e in entries
            if self.system != "NCIC" or e.rtype == "SOR"
        )
        # A big page cache for the bulk insert only; a serving store keeps a small one.
        self._db.execute(f"PRAGMA cache_size=-{max(SEED_CACHE_KIB, self._cache_kib)}")
        try:
            with self.transaction():
                cur = self._db.executemany(
                    "INSERT OR IGNORE INTO records (lno, rtype, nic, ori, nam, sex, dob) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                return max(cur.rowcount, 0)  # the rows inserted, not the triggers' outbox rows
        finally:
            self._db.execute(f"PRAGMA cache_size=-{int(self._cache_kib)}")  # frees the excess

    def record_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    def record_by_lno(self, lno: str) -> RecordEntry | None:
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE lno = ?", (lno,)
        ).fetchone()
        return _record(row) if row else None

    def record_by_nic(self, nic: str) -> RecordEntry | None:
        row = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE nic = ?", (nic,)
        ).fetchone()
        return _record(row) if row else None

    def records_by_person(self, nam: str, sex: str, dob: str) -> list[RecordEntry]:
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM records WHERE nam = ? AND sex = ? AND dob = ? "
            "ORDER BY lno",
            (nam, sex, dob),
        ).fetchall()
        return [_record(r) for r in rows]

    def records_after(self, rowid: int, limit: int = 5000) -> list[tuple[int, RecordEntry]]:
        """Records in insertion order after `rowid`: for publishing the directory in pages."""
        rows = self._db.execute(
            f"SELECT rowid, {_RECORD_COLUMNS} FROM records WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (rowid, limit),
        ).fetchall()
        return [(int(r[0]), _record(r[1:])) for r in rows]

    # ----------------------------------------------------------------- images

    def active_images(self, lno: str) -> list[ImageRow]:
        rows = self._db.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE lno = ? AND status = 'active' "
            "ORDER BY imt, id",
            (lno,),
        ).fetchall()
        return [_image(r) for r in rows]

    def image_by_imn(self, imn: str) -> ImageRow | None:
        """The active image under `imn`, else the most recent cancelled one, else None."""
        row = self._db.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE imn = ? "
            "ORDER BY status = 'active' DESC, id DESC LIMIT 1",
            (imn,),
        ).fetchone()
        return _image(row) if row else None

    def last_imn(self, lno: str, imt: str) -> str | None:
        """The IMN most recently assigned on this record for this image type."""
        row = self._db.execute(
            "SELECT imn FROM images WHERE lno = ? AND imt = ? ORDER BY id DESC LIMIT 1",
            (lno, imt),
        ).fetchone()
        return str(row[0]) if row else None

    def insert_image(
        self,
        *,
        imn: str,
        lno: str,
        imt: str,
        doi: str,
        mis: str | None,
        jpeg: bytes,
        sha256: str,
        entered: str,
        cid: str | None = None,
    ) -> int:
        cur = self._db.execute(
            "INSERT INTO images (imn, lno, imt, doi, mis, jpeg, sha256, status, entered, cid) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
            (imn, lno, imt, doi, mis, jpeg, sha256, entered, cid),
        )
        return int(cur.lastrowid or 0)

    def modify_image(
        self,
        image_id: int,
        *,
        doi: str,
        mis: str | None,
        jpeg: bytes,
        sha256: str,
        modified: str,
    ) -> None:
        self._db.execute(
            "UPDATE images SET doi = ?, mis = ?, jpeg = ?, sha256 = ?, modified = ? WHERE id = ?",
            (doi, mis, jpeg, sha256, modified, image_id),
        )

    def cancel_image(self, image_id: int, *, doc: str, cancelled: str) -> None:
        self._db.execute(
            "UPDATE images SET status = 'cancelled', doc = ?, cancelled = ? WHERE id = ?",
            (doc, cancelled, image_id),
        )

    def highest_shared_imns(self) -> list[str]:
        """Per partition digit, the highest shared IMN (`I` + 9 digits) ever stored,
        cancelled ones included: LEADS's floor for the router's IMN sequences."""
        found = []
        for digit in range(10):
            row = self._db.execute(
                "SELECT imn FROM images WHERE imn GLOB ? ORDER BY imn DESC LIMIT 1",
                (f"I{digit}" + "[0-9]" * 8,),
            ).fetchone()
            if row:
                found.append(str(row[0]))
        return found

    def shared_image_owners(self) -> list[tuple[str, str]]:
        """(IMN, LNO) of every shared IMN on file, cancelled ones included."""
        rows = self._db.execute(
            "SELECT DISTINCT imn, lno FROM images WHERE imn GLOB ? ORDER BY imn",
            ("I" + "[0-9]" * 9,),
        ).fetchall()
        return [(str(imn), str(lno)) for imn, lno in rows]

    def image_count(self, *, status: str | None = None) -> int:
        if status is None:
            row = self._db.execute("SELECT count(*) FROM images").fetchone()
        else:
            row = self._db.execute(
                "SELECT count(*) FROM images WHERE status = ?", (status,)
            ).fetchone()
        return int(row[0])

    def images_entered_by(self, cid: str) -> list[ImageRow]:
        """Images entered by one transaction (for checks that an entry applied once)."""
        rows = self._db.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE cid = ? ORDER BY id", (cid,)
        ).fetchall()
        return [_image(r) for r in rows]

    # ----------------------------------------------------------------- applied answers

    def applied_answer(self, cid: str) -> bytes | None:
        row = self._db.execute("SELECT answer FROM applied WHERE cid = ?", (cid,)).fetchone()
        return bytes(row[0]) if row else None

    def record_applied(self, cid: str, answer: bytes, when: float) -> None:
        self._db.execute(
            "INSERT INTO applied (cid, answer, applied) VALUES (?, ?, ?)", (cid, answer, when)
        )

    def applied_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM applied").fetchone()[0])

    # ----------------------------------------------------------------- changelog

    def outbox_after(self, seq: int, limit: int = 2000) -> list[tuple[int, str, str]]:
        """(seq, table letter, primary key) of the changes queued after `seq`."""
        rows = self._db.execute(
            "SELECT seq, tbl, pk FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [(int(q), str(t), str(k)) for q, t, k in rows]

    def outbox_done(self, upto: int, position: int | None) -> None:
        """The changelog has the changes up to `upto`; it is read up to `position`."""
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))
        if position is not None:
            self.set_position(position)

    def unclean(self) -> bool:
        """Whether an image or an answer was stored but never reached the changelog: the
        process that stored it died before; its answer was never sent (changes go first),
        and whoever owned the partition since may have applied the request again. (Rows
        queued in bulk, by the migration that added the changelog or `requeue_all`, are
        not such changes.)"""
        row = self._db.execute(
            "SELECT 1 FROM outbox WHERE tbl != 'r' AND seq > "
            "coalesce((SELECT value FROM meta WHERE name = 'bulk_upto'), 0) LIMIT 1"
        ).fetchone()
        return row is not None

    def position(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (POSITION,)).fetchone()
        return int(row[0]) if row else 0

    def set_position(self, position: int) -> None:
        self._db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) "
                         "DO UPDATE SET value = excluded.value", (POSITION, position))

    def read_row(self, tbl: str, pk: str) -> tuple[object, ...] | None:
        """A row's current columns (CHANGE_TABLES order), None when it is gone."""
        table, key, columns = CHANGE_TABLES[tbl]
        row = self._db.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE {key} = ?",
            (int(pk) if tbl == "i" else pk,),
        ).fetchone()
        return tuple(row) if row else None

    def write_row(self, tbl: str, pk: str, values: tuple[object, ...] | None) -> None:
        """Make a row what the changelog says (None: deleted). Records never change once
        entered, so an existing one is left as it is (images refer to it)."""
        table, key, columns = CHANGE_TABLES[tbl]
        if values is None:
            self._db.execute(f"DELETE FROM {table} WHERE {key} = ?", (int(pk) if tbl == "i" else pk,))
            return
        marks = ", ".join("?" * len(columns))
        if tbl == "r":
            sql = f"INSERT OR IGNORE INTO records ({', '.join(columns)}) VALUES ({marks})"
        else:
            sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
            sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                   f"ON CONFLICT ({key}) DO UPDATE SET {sets}")
        self._db.execute(sql, values)

    def forget_unsent(self) -> int:
        """Before rebuilding from the changelog: drop the images and answers (the records
        stay: they never change) and their queued changes; read the changelog from 0.
        Returns how many queued changes were dropped."""
        gone = self._db.execute("SELECT count(*) FROM outbox WHERE tbl != 'r'").fetchone()[0]
        self._db.execute("DELETE FROM images")
        self._db.execute("DELETE FROM applied")
        self._db.execute("DELETE FROM outbox WHERE tbl != 'r'")
        self.set_position(0)
        return int(gone)

    def last_outbox_seq(self) -> int:
        row = self._db.execute("SELECT max(seq) FROM outbox").fetchone()
        return int(row[0] or 0)

    def requeue_all(self) -> None:
        """Queue every row again (for a changelog topic that lost them: recreated). Queued
        in bulk, they are not unsent answers (see `unclean`)."""
        self._db.execute("DELETE FROM outbox")
        self._db.execute("INSERT INTO outbox (tbl, pk) SELECT 'r', lno FROM records ORDER BY rowid")
        self._db.execute("INSERT INTO outbox (tbl, pk) SELECT 'i', id FROM images ORDER BY id")
        self._db.execute("INSERT INTO outbox (tbl, pk) SELECT 'a', cid FROM applied ORDER BY rowid")
        self._db.execute("INSERT INTO meta (name, value) VALUES ('bulk_upto', ?) ON CONFLICT (name) "
                         "DO UPDATE SET value = excluded.value", (self.last_outbox_seq(),))

    def drop_outbox_after(self, seq: int) -> None:
        """Changes made by replaying the changelog are in it already: not queued again."""
        self._db.execute("DELETE FROM outbox WHERE seq > ?", (seq,))

    def prune_applied(self, before: float) -> int:
        """Forget answers older than `before` (epoch s): redeliveries come within minutes."""
        with self.transaction():
            cur = self._db.execute("DELETE FROM applied WHERE applied < ?", (before,))
            return cur.rowcount
