"""A system's records split by leg partition: one SQLite store per partition.

The router keys every leg request by the LNO of its record (switch/router/rules.py), so
Kafka's default partitioner sends all of a record's requests to one partition of the
system's leg topic, `key_partition(lno, n)`. The store of partition p holds exactly the
records (and their images) whose LNO hashes to p, in `<home>/stores/<system>/p<p>.sqlite3`.
Whichever instance of the service owns partition p in the consumer group is the only
writer of that file; when the partition moves to another instance on the same host, the
new owner opens the same file. The applied answers (by cid) of a partition are in its
store too, so a redelivered leg request finds its answer wherever it is redelivered.

A store of an earlier version (one file per system, `<home>/stores/<system>.sqlite3`) is
split into the partition stores the first time they are needed, and kept beside them as
`<system>.sqlite3.split` (nothing is deleted).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from services.store import Store
from switch.contract.internal import RecordEntry
from switch.kafka.keys import key_partition
from switch.settings import Settings


class SystemStores:
    """The partition stores of one system under one home, opened when first needed."""

    def __init__(self, settings: Settings, system: str) -> None:
        self.settings = settings
        self.system = system.upper()
        self.partitions = settings.topics.partitions
        self.folder = settings.store_dir(self.system)
        self._open: dict[int, Store] = {}
        split_legacy(settings, self.system)

    def partition_of(self, lno: str) -> int:
        return key_partition(lno, self.partitions)

    def store(self, partition: int) -> Store:
        """Partition `partition`'s store (created empty when there is none yet)."""
        if not 0 <= partition < self.partitions:
            raise ValueError(
                f"{self.system} leg partition {partition}: the leg topic has more partitions "
                f"than SWITCH_PARTITIONS={self.partitions}; give every process the same value"
            )
        store = self._open.get(partition)
        if store is None:
            store = self._open[partition] = Store(
                self.settings.store_path(self.system, partition), self.system
            )
        return store

    def for_lno(self, lno: str) -> Store:
        return self.store(self.partition_of(lno))

    def all(self) -> Iterator[tuple[int, Store]]:
        """Every partition's store, in partition order (opening those not open yet)."""
        for p in range(self.partitions):
            yield p, self.store(p)

    def insert_records(self, entries: Iterable[RecordEntry]) -> int:
        """Insert each record into its partition's store (records on file are left
        alone); return how many were new."""
        by_partition: dict[int, list[RecordEntry]] = defaultdict(list)
        for entry in entries:
            by_partition[self.partition_of(entry.lno)].append(entry)
        return sum(self.store(p).insert_records(part) for p, part in sorted(by_partition.items()))

    def others(self, partition: int) -> list[Store]:
        """Every partition's store but `partition`'s: what a query may also read."""
        return [store for p, store in self.all() if p != partition]

    def record_count(self) -> int:
        return sum(store.record_count() for _, store in self.all())

    @property
    def wrote(self) -> bool:
        return any(store.wrote for store in self._open.values())

    def close(self) -> None:
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __enter__(self) -> SystemStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_legacy(settings: Settings, system: str) -> bool:
    """Split an earlier version's single store into the partition stores, once. Records
    and images go to their LNO's partition; applied answers (keyed by cid, whose LNO is
    not known) are copied to every partition, so a late redelivery still finds its own."""
    legacy = settings.legacy_store_path(system)
    if not legacy.is_file():
        return False
    partitions = settings.topics.partitions
    for p in range(partitions):
        path = settings.store_path(system, p)
        Store(path, system).close()  # the schema, migrated
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.create_function("part", 1, lambda lno: key_partition(lno, partitions),
                               deterministic=True)
            db.execute("ATTACH DATABASE ? AS old", (legacy.absolute().as_uri() + "?mode=ro",))
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR IGNORE INTO records SELECT * FROM old.records "
                       "WHERE part(lno) = ?", (p,))
            db.execute("INSERT OR IGNORE INTO images SELECT * FROM old.images "
                       "WHERE part(lno) = ?", (p,))
            db.execute("INSERT OR IGNORE INTO applied SELECT * FROM old.applied")
            # Queued for the changelog in bulk: not answers a dead process left unsent.
            db.execute("INSERT INTO meta (name, value) SELECT 'bulk_upto', coalesce(max(seq), 0) "
                       "FROM outbox WHERE true ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            db.execute("COMMIT")
        finally:
            db.close()
    for suffix in ("-wal", "-shm"):
        legacy.with_name(legacy.name + suffix).unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):  # another process split it meanwhile
        legacy.rename(legacy.with_name(legacy.name + ".split"))
    return True


def read_only_union(paths: list[Path]) -> sqlite3.Connection:
    """One read-only connection over several stores of a system: `records`, `images` and
    `applied` are views of all of them (UNION ALL), so a report or a check reads a
    partitioned system as it read one file. Missing files are left out; FileNotFoundError
    when none exists."""
    present = [p for p in paths if p.is_file()]
    if not present:
        raise FileNotFoundError(f"no store at {paths[0] if paths else '(no path)'}")
    db = sqlite3.connect(":memory:", uri=True)
    for i, path in enumerate(present):
        db.execute(f"ATTACH DATABASE ? AS s{i}", (path.absolute().as_uri() + "?mode=ro",))
    for table in ("records", "images", "applied"):
        union = " UNION ALL ".join(f"SELECT * FROM s{i}.{table}" for i in range(len(present)))
        db.execute(f"CREATE TEMP VIEW {table} AS {union}")
    return db
