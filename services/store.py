"""A system of record's store: SQLite in WAL mode, one file per system.

LEADS holds every record (SOR and VOAY); NCIC holds the SOR records only, under their
NIC, and knows their LNO too. Images are keyed by a surrogate id: an IMN names one
*active* image (a partial unique index enforces it), while a cancelled image keeps its
IMN for the record, so a VOAY sequence digit may be used again later.

`applied` maps a correlation id to the answer given, written in the same SQLite
transaction as the change it answers; a redelivered leg request therefore changes
nothing and gets the stored answer back.

Schema changes are numbered migrations tracked in `PRAGMA user_version`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from switch.contract.internal import RecordEntry
from switch.errors import SwitchError

ACTIVE = "active"
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
)


class StoreError(SwitchError):
    """The store cannot be opened or its schema is newer than this code."""


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

    def __init__(self, path: Path | str, system: str, *, busy_timeout_s: float = 10.0) -> None:
        self.system = system.upper()
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are explicit (BEGIN/SAVEPOINT below).
        self._db = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_s)
        self._depth = 0
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: an answer is only sent after its change is on disk, even across a
            # power loss. Services commit once per Kafka batch, so the cost is small.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # 32 MiB of page cache: seeding 100,000 records into random-keyed indexes
            # runs about twice as fast as with the 2 MiB default.
            self._db.execute("PRAGMA cache_size=-32768")
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
        """All or nothing. Nests: an inner block is a savepoint of the outer one."""
        name = f"sp{self._depth}"
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        else:
            self._db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("ROLLBACK")
            else:
                self._db.execute(f"ROLLBACK TO {name}")
                self._db.execute(f"RELEASE {name}")
            raise
        self._depth -= 1
        if self._depth == 0:
            self._db.execute("COMMIT")
        else:
            self._db.execute(f"RELEASE {name}")

    # ----------------------------------------------------------------- records

    def insert_records(self, entries: Iterable[RecordEntry]) -> int:
        """Insert records, ignoring any already on file; return how many were new."""
        rows = (
            (e.lno, e.rtype, e.nic, e.ori, e.nam, e.sex, e.dob)
            for e in entries
            if self.system != "NCIC" or e.rtype == "SOR"
        )
        with self.transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO records (lno, rtype, nic, ori, nam, sex, dob) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return self._db.total_changes - before

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

    def prune_applied(self, before: float) -> int:
        """Forget answers older than `before` (epoch s): redeliveries come within minutes."""
        with self.transaction():
            cur = self._db.execute("DELETE FROM applied WHERE applied < ?", (before,))
            return cur.rowcount
