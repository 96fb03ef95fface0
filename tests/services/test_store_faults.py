"""The store on a full disk and a slow one (no Kafka): a full disk rolls the whole
transaction back and says `StoreFull`; the store stays usable and takes writes again
once there is room; the slow-disk knob delays commits; the page cache stays bounded."""

from __future__ import annotations

import io
import random
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from PIL import Image

from services.rules import apply_request
from services.store import (
    COMMIT_DELAY_ENV,
    QUOTA_ENV,
    SERVE_CACHE_KIB,
    Store,
    StoreFull,
    is_full,
)
from services.storefull import RETRY_S, FullStoreGuard
from switch.contract.messages import EnterImage
from tests.services.helpers import OWNER, RECORDS, SOR, leg, mid


@cache
def _photo(n: int) -> bytes:
    """A noisy JPEG of some 20 KB: more than the pages a fresh store has spare."""
    rng = random.Random(n)
    im = Image.frombytes("RGB", (120, 150), bytes(rng.randrange(256) for _ in range(120 * 150 * 3)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _entry(n: int) -> EnterImage:
    return EnterImage(mid=mid(), ori=OWNER, lno=SOR.lno, imt="I", doi="20240101", image=_photo(n))


def _quota_store(tmp_path: Path) -> tuple[Store, Path]:
    quota = tmp_path / "quota"
    store = Store(tmp_path / "leads.sqlite3", "LEADS", env={QUOTA_ENV: str(quota)})
    store.insert_records(RECORDS)
    return store, quota


def test_a_full_store_rolls_the_whole_batch_back_and_takes_writes_when_room_returns(
        tmp_path: Path) -> None:
    store, quota = _quota_store(tmp_path)
    now = datetime.now(UTC)
    with store:
        quota.write_text(str(store.page_count()))  # not one page more
        legs = [leg(_entry(i), "LEADS") for i in range(3)]
        with pytest.raises(StoreFull) as caught, store.transaction():  # one batch
            for lg in legs:
                apply_request(store, lg, now=now)  # each in its own savepoint
        assert is_full(caught.value) and "full" in str(caught.value.cause)
        assert store.image_count() == 0 and store.applied_count() == 0  # nothing of it
        with pytest.raises(StoreFull):  # still full: the same again, the store still usable
            apply_request(store, legs[0], now=now)
        quota.write_text("")  # room again
        with store.transaction():
            answers = [apply_request(store, lg, now=now) for lg in legs]
        assert store.wrote
        with store.transaction():
            store.record_by_lno(SOR.lno)
        assert not store.wrote
        assert [a.answer.leg.status for a in answers] == ["ACK"] * 3, answers[0].answer
        assert store.applied_count() == 3
        assert not store._db.in_transaction


def test_a_full_disk_is_sqlite_full_on_a_real_small_filesystem(tmp_path: Path) -> None:
    """Where a size-limited tmpfs can be mounted (root): the real ENOSPC."""
    import subprocess

    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); the quota test covers SQLITE_FULL")
    try:
        store = Store(mnt / "leads.sqlite3", "LEADS")
        store.insert_records(RECORDS)
        with store, pytest.raises(StoreFull):
            for i in range(1000):
                with store.transaction():
                    store.record_applied(f"c{i}", b"x" * 4000, time.time())
        # the failed batch left the connection usable
        subprocess.run(["mount", "-o", "remount,size=8m", str(mnt)], check=True)
        with Store(mnt / "leads.sqlite3", "LEADS") as again, again.transaction():
            again.record_applied("after", b"x", time.time())
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_the_slow_disk_knob_delays_every_commit(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3", "LEADS", env={COMMIT_DELAY_ENV: "0.2"}) as store:
        t0 = time.monotonic()
        with store.transaction(), store.transaction():  # a savepoint is not a commit
            store.record_applied("a", b"x", 0.0)
        assert 0.2 <= time.monotonic() - t0 < 1.0
        assert store.applied_count() == 1


def test_the_page_cache_of_a_serving_store_is_bounded(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite3", "LEADS") as store:
        store.insert_records(RECORDS)  # seeding raises it for the bulk insert only
        assert store._db.execute("PRAGMA cache_size").fetchone()[0] == -SERVE_CACHE_KIB


class _Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, msg: str, **kw: object) -> None:
        self.lines.append(("error", msg))

    def warning(self, msg: str, **kw: object) -> None:
        self.lines.append(("warning", msg))


def test_the_guard_says_it_once_backs_off_and_says_when_it_resumed(tmp_path: Path) -> None:
    log, now = _Log(), [0.0]
    guard = FullStoreGuard("LEADS", tmp_path / "leads.sqlite3", log, monotonic=lambda: now[0])
    exc = StoreFull(tmp_path / "leads.sqlite3", OSError("database or disk is full"))
    pauses = []
    for _ in range(8):
        guard.failed(exc)
        pauses.append(guard.pause_s)
        now[0] += guard.pause_s
    assert pauses[:4] == list(RETRY_S) and pauses[-1] == RETRY_S[-1]
    assert len(log.lines) == 1 and log.lines[0][0] == "error"
    assert "store is full" in log.lines[0][1] and "Free space" in log.lines[0][1]
    guard.stored(wrote=False)  # a batch of queries only: no proof of room
    assert guard.active and len(log.lines) == 1
    guard.stored()
    guard.stored()
    assert [k for k, _ in log.lines] == ["error", "warning"] and not guard.active
    assert guard.episodes == 1
