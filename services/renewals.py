"""Which records need a new mugshot: the annual-photo rule as a query over a store.

Illinois law wants a current photograph of every registrant, renewed every year
(DOMAIN.md). A record needs attention when it has no active mugshot (IMT M) at all,
or when its active mugshot is due for renewal: its DOI is more than `renewal_days`
(365) days before today, the same cut as `rules.renewal_due` (a QIM marks such an
image `renewal_due`). DOIs are CCYYMMDD text, so "more than N days old" is the text
comparison `doi < cutoff` with cutoff = today - N days, and the database does it.

Read-only: the store file is opened with SQLite's `mode=ro`, so a report can run
beside a running service and never changes, creates or migrates a store. The SQL
lives here, not in `Store`, because it is a report's question, not a service's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from services.stores import read_only_union
from switch.errors import SwitchError
from switch.settings import Settings

NO_PHOTO = "NO PHOTO"
DUE = "DUE"

# The newest active mugshot per record. SQLite fills the bare column `imn` from the
# row that holds max(doi) (documented behaviour of min/max aggregates).
_MUGSHOTS = """
WITH m AS (
    SELECT lno, imn, max(doi) AS doi FROM images
    WHERE imt = 'M' AND status = 'active'
    GROUP BY lno
)
"""
_LIST = _MUGSHOTS + """
SELECT r.lno, r.rtype, r.ori, r.nam, r.nic, m.imn, m.doi
FROM records r LEFT JOIN m ON m.lno = r.lno
WHERE (:ori IS NULL OR r.ori = :ori) AND (m.doi IS NULL OR m.doi < :cutoff)
ORDER BY r.ori, m.doi IS NOT NULL, m.doi, r.lno
"""
_COUNT = _MUGSHOTS + """
SELECT count(*), coalesce(sum(m.doi IS NULL), 0), coalesce(sum(m.doi < :cutoff), 0)
FROM records r LEFT JOIN m ON m.lno = r.lno
WHERE (:ori IS NULL OR r.ori = :ori)
"""


class ReportError(SwitchError):
    """The store cannot be read (missing, not a switch store)."""


@dataclass(frozen=True, slots=True)
class Renewal:
    """One record whose mugshot is missing or due."""

    lno: str
    rtype: str
    ori: str
    nam: str | None
    nic: str | None
    imn: str | None  # the current mugshot, None when there is none
    doi: str | None
    days_old: int | None

    @property
    def reason(self) -> str:
        return NO_PHOTO if self.doi is None else DUE


@dataclass(frozen=True, slots=True)
class RenewalReport:
    today: date
    renewal_days: int
    cutoff: str  # a DOI before this (CCYYMMDD) is due
    ori: str | None
    records: int  # records looked at (of the ORI, when given)
    no_photo: int
    due: int
    items: list[Renewal] = field(default_factory=list)

    @property
    def current(self) -> int:
        return self.records - self.no_photo - self.due

    def to_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.strftime("%Y%m%d"),
            "renewal_days": self.renewal_days,
            "cutoff": self.cutoff,
            "ori": self.ori,
            "summary": {"records": self.records, "no_photo": self.no_photo, "due": self.due,
                        "current": self.current},
            "records": [asdict(i) | {"reason": i.reason} for i in self.items],
        }


def cutoff_for(today: date, renewal_days: int) -> str:
    """The first DOI that is *not* due: today - renewal_days, as CCYYMMDD."""
    return (today - timedelta(days=renewal_days)).strftime("%Y%m%d")


def _days_old(doi: str, today: date) -> int | None:
    try:
        return (today - datetime.strptime(doi, "%Y%m%d").date()).days
    except ValueError:
        return None


def renewals(
    db: sqlite3.Connection,
    *,
    today: date,
    renewal_days: int = 365,
    ori: str | None = None,
) -> RenewalReport:
    """The report over an open store connection (a test may pass any connection)."""
    cutoff = cutoff_for(today, renewal_days)
    params = {"ori": ori, "cutoff": cutoff}
    try:
        total, no_photo, due = db.execute(_COUNT, params).fetchone()
        rows = db.execute(_LIST, params).fetchall()
    except sqlite3.Error as exc:
        raise ReportError(f"cannot read the store: {exc}") from None
    items = [
        Renewal(lno=lno, rtype=rtype, ori=o, nam=nam, nic=nic, imn=imn, doi=doi,
                days_old=None if doi is None else _days_old(doi, today))
        for lno, rtype, o, nam, nic, imn, doi in rows
    ]
    return RenewalReport(today=today, renewal_days=renewal_days, cutoff=cutoff, ori=ori,
                         records=int(total), no_photo=int(no_photo), due=int(due), items=items)


def open_read_only(paths: list[Path]) -> sqlite3.Connection:
    """A read-only connection over a system's partition stores; ReportError when there is
    none."""
    try:
        db = read_only_union(paths)
        db.execute("SELECT 1 FROM records LIMIT 1").fetchall()
    except FileNotFoundError:
        raise ReportError(
            f"no store at {paths[0].parent if paths else '(none)'}: seed one (`switch seed "
            "--count N`) or start the switch (`switch up`), or point --home / SWITCH_HOME at "
            "the right folder"
        ) from None
    except sqlite3.Error as exc:
        raise ReportError(f"{paths[0].parent}: not a readable switch store: {exc}") from None
    return db


def renewal_report(
    settings: Settings,
    *,
    today: date | None = None,
    ori: str | None = None,
    system: str = "LEADS",
) -> RenewalReport:
    """The report for the store of `system` (LEADS holds every record) under SWITCH_HOME.

    `today` defaults to the UTC date, as the services use for `renewal_due`.
    """
    # An earlier version's single store, until a service splits it: read as it is.
    db = open_read_only([*settings.store_paths(system), settings.legacy_store_path(system)])
    try:
        day = today or datetime.now(UTC).date()
        return renewals(db, today=day, renewal_days=settings.renewal_days, ori=ori)
    finally:
        db.close()
