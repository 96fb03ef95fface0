"""The record directory the router routes by: LNO -> record, fed from `<prefix>.records`."""

from __future__ import annotations

import sqlite3

from switch.contract.internal import RecordEntry

# The image-owner map grows with every shared IMN on file (tens of thousands a day at a
# steady load): it lives in a private temporary SQLite database, whose pages beyond this
# cache go to a temporary file, so the router's memory does not grow with it. It is
# rebuilt from the records topic at every start (nothing to keep).
OWNER_CACHE_KIB = 1024


class Directory:
    """In-memory view of the compacted records topic published by LEADS."""

    def __init__(self) -> None:
        self._by_lno: dict[str, RecordEntry] = {}
        self._by_nic: dict[str, str] = {}
        # shared IMN -> LNO of its record; "" names a private temporary on-disk database.
        self._owners = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._owners.execute(f"PRAGMA cache_size=-{OWNER_CACHE_KIB}")
        self._owners.execute("PRAGMA journal_mode=OFF")
        self._owners.execute("PRAGMA synchronous=OFF")
        self._owners.execute(
            "CREATE TABLE owners (imn TEXT PRIMARY KEY, lno TEXT NOT NULL) WITHOUT ROWID")

    def __len__(self) -> int:
        return len(self._by_lno)

    def put(self, entry: RecordEntry) -> None:
        self._by_lno[entry.lno] = entry
        if entry.nic:
            self._by_nic[entry.nic] = entry.lno

    def remove(self, lno: str) -> None:
        old = self._by_lno.pop(lno, None)
        if old is not None and old.nic:
            self._by_nic.pop(old.nic, None)

    def note_image(self, imn: str, lno: str) -> None:
        """Shared IMN `imn` was entered (or is being entered) on record `lno`."""
        self._owners.execute("INSERT OR REPLACE INTO owners (imn, lno) VALUES (?, ?)", (imn, lno))

    def forget_image(self, imn: str) -> None:
        self._owners.execute("DELETE FROM owners WHERE imn = ?", (imn,))

    def lno_of_imn(self, imn: str) -> str | None:
        row = self._owners.execute("SELECT lno FROM owners WHERE imn = ?", (imn,)).fetchone()
        return None if row is None else str(row[0])

    def images_noted(self) -> int:
        return int(self._owners.execute("SELECT COUNT(*) FROM owners").fetchone()[0])

    def by_lno(self, lno: str) -> RecordEntry | None:
        return self._by_lno.get(lno)

    def by_nic(self, nic: str) -> RecordEntry | None:
        lno = self._by_nic.get(nic)
        return self._by_lno.get(lno) if lno else None
