"""The record directory the router routes by: LNO -> record, fed from `<prefix>.records`."""

from __future__ import annotations

from switch.contract.internal import RecordEntry


class Directory:
    """In-memory view of the compacted records topic published by LEADS."""

    def __init__(self) -> None:
        self._by_lno: dict[str, RecordEntry] = {}
        self._by_nic: dict[str, str] = {}
        self._owner_of_imn: dict[str, str] = {}  # shared IMN -> LNO of its record

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
        self._owner_of_imn[imn] = lno

    def forget_image(self, imn: str) -> None:
        self._owner_of_imn.pop(imn, None)

    def lno_of_imn(self, imn: str) -> str | None:
        return self._owner_of_imn.get(imn)

    def by_lno(self, lno: str) -> RecordEntry | None:
        return self._by_lno.get(lno)

    def by_nic(self, nic: str) -> RecordEntry | None:
        lno = self._by_nic.get(nic)
        return self._by_lno.get(lno) if lno else None
