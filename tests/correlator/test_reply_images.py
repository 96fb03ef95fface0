"""A finished reply's images kept once by SHA-256 (store.py, images.py): the duplicate
still gets the original reply, images and all; an image goes only once no finished reply
names it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import msgspec

from switch.contract.internal import DuplicateNotice, Finished
from switch.contract.messages import ImageRecord, Leg, Reply, encode, reply_decoder
from switch.correlator.images import image_key, join, split
from switch.correlator.pending import PendingTable
from switch.correlator.store import ReplyStore

T0 = 1_000_000.0
A, B, C = b"\xff\xd8\xff photo a" * 90, b"\xff\xd8\xff photo b" * 90, b"\xff\xd8\xff photo c" * 90


def qim_reply(cid: str, photos: list[bytes]) -> Reply:
    images = [ImageRecord(system=s, imn=f"I{i:09d}", imt="M", doi="20250101", image=p)
              for i, p in enumerate(photos) for s in ("LEADS", "NCIC")]
    return Reply(mid=f"mid-{cid}", cid=cid, mke="QIM", ori="IL0160000", status="COMPLETE",
                 legs={"LEADS": Leg(status="ACK"), "NCIC": Leg(status="ACK")},
                 images=images, text="LEADS ACK\nNCIC ACK", ts="2026-12-03T10:00:00Z")


def finished(cid: str, photos: list[bytes], done_at: float) -> Finished:
    return Finished(cid=cid, ori="IL0160000", mid=f"mid-{cid}",
                    reply=msgspec.Raw(encode(qim_reply(cid, photos))), done_at=done_at)


def keep(store: ReplyStore, partition: int, fin: Finished) -> list[tuple[str, bytes]]:
    """Stage `fin` as the loop does, then apply what was staged (after the commit)."""
    out = store.changelog_records(partition, fin.cid, fin)
    store.apply([(partition, k, v) for k, v in out])
    return out


def test_split_then_join_gives_the_reply_byte_for_byte() -> None:
    original = encode(qim_reply("c1", [A, B]))
    parts = split(original)
    assert parts is not None
    slim, digests, blobs = parts
    assert digests == [hashlib.sha256(p).hexdigest() for p in (A, A, B, B)]
    assert len(blobs) == 2 and A not in slim and len(slim) < len(original) / 3
    assert encode(join(slim, digests, blobs)) == original


def test_a_reply_without_images_is_kept_as_it_is() -> None:
    store = ReplyStore()
    fin = finished("c1", [], T0)
    [(key, value)] = keep(store, 0, fin)
    assert key == "c1" and value == msgspec.json.encode(fin)
    assert store.finished("c1") == fin


def test_each_image_is_written_once_per_partition_and_the_duplicate_gets_it_back() -> None:
    store = ReplyStore()
    first = keep(store, 0, finished("c1", [A, B], T0))
    assert [k for k, _ in first] == [image_key(hashlib.sha256(A).hexdigest()),
                                     image_key(hashlib.sha256(B).hexdigest()), "c1"]
    assert [k for k, _ in keep(store, 0, finished("c2", [A, B, C], T0 + 1))] == [
        image_key(hashlib.sha256(C).hexdigest()), "c2"]
    # Another partition restores on its own (possibly in another instance): its own copy.
    assert len(keep(store, 1, finished("c3", [A], T0 + 2))) == 2
    assert store.image_count() == 4
    for cid, photos in (("c1", [A, B]), ("c2", [A, B, C]), ("c3", [A])):
        got = store.finished(cid)
        assert got is not None and got.images is None
        assert bytes(got.reply) == encode(qim_reply(cid, photos))
    # What a duplicate is answered with: the original reply, marked duplicate.
    table = PendingTable(lookup=store.finished)
    [emit] = table.on_duplicate(DuplicateNotice(cid="c2", mid="mid-c2", ori="IL0160000"))
    assert emit.reply.duplicate and [im.image for im in emit.reply.images] == [A, A, B, B, C, C]


def test_the_changelog_alone_restores_every_reply(tmp_path: Path) -> None:
    store = ReplyStore(tmp_path / "a.sqlite3")
    records: list[tuple[int, str, bytes | None]] = []
    for cid, photos in (("c1", [A]), ("c2", [A, B])):
        records += [(0, k, v) for k, v in keep(store, 0, finished(cid, photos, T0))]
    fresh = ReplyStore(tmp_path / "b.sqlite3")  # the local file lost: the topic read again
    fresh.apply(records)
    got = fresh.finished("c2")
    assert got is not None and reply_decoder.decode(got.reply).images[2].image == B


def test_an_image_goes_only_after_the_last_reply_naming_it() -> None:
    store = ReplyStore()
    keep(store, 0, finished("c1", [A, B], T0))
    keep(store, 0, finished("c2", [B], T0 + 100))
    retention = 50.0
    # c1 is past the retention; it is still held, so nothing of it is swept yet.
    assert store.expired(T0 + 120 - retention, {0}) == [("c1", 0)]
    assert store.expired_images(T0 + 120 - retention, {0}) == []
    store.apply([(0, "c1", None)])  # its tombstone, applied after the commit
    assert store.expired_images(T0 + 120 - retention, {0}) == [
        (image_key(hashlib.sha256(A).hexdigest()), 0)]  # B is still named by c2
    # A reply staged in this very step names A again: A stays.
    fin = finished("c3", [A], T0 + 120)
    out = store.changelog_records(0, "c3", fin)
    assert [k for k, _ in out] == ["c3"]  # A is held: not written again
    assert store.expired_images(T0 + 120 - retention, {0}) == []
    store.apply([(0, k, v) for k, v in out])
    assert store.expired_images(T0 + 120 - retention, {0}) == []
    got = store.finished("c3")
    assert got is not None and reply_decoder.decode(got.reply).images[0].image == A


def test_an_image_swept_and_named_again_is_written_again() -> None:
    store = ReplyStore()
    keep(store, 0, finished("c1", [A], T0))
    store.apply([(0, "c1", None)])
    [(key, p)] = store.expired_images(T0 + 1, {0})
    store.apply([(p, key, None)])
    assert store.image_count() == 0
    assert [k for k, _ in keep(store, 0, finished("c2", [A], T0 + 2))] == [key, "c2"]
    got = store.finished("c2")
    assert got is not None and reply_decoder.decode(got.reply).images[0].image == A


def test_a_reply_kept_inline_by_an_older_correlator_still_answers() -> None:
    store = ReplyStore()
    fin = finished("c1", [A], T0)
    store.apply([(0, "c1", msgspec.json.encode(fin))])
    assert store.finished("c1") == fin


def test_a_store_of_the_older_layout_is_read_again_from_the_changelog(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "replies-0.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE finished (cid TEXT PRIMARY KEY, partition INTEGER NOT NULL,
            done_at REAL NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
        CREATE TABLE seen (partition INTEGER PRIMARY KEY, next INTEGER NOT NULL);
        INSERT INTO seen VALUES (0, 123);
    """)
    old.commit()
    old.close()
    store = ReplyStore(path)
    assert store.seen() == {}  # so the restore reads the whole changelog into the new layout
    keep(store, 0, finished("c1", [A], T0))
    store.close()
    again = ReplyStore(path)
    assert again.finished_count() == 1 and again.image_count() == 1
