"""The console's per-reply work without Kafka: linking, bounds, images, JSON lines, counts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec

from switch.console.filters import ReplyFilter
from switch.console.images import image_filename, save_images
from switch.console.state import FirstSeen
from switch.console.tail import Console, TailOptions
from switch.contract.messages import ImageRecord, encode
from tests.console.helpers import eim_reply, qim_reply, reject_reply


def console(**options: object) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(TailOptions(**options), out, err), out, err  # type: ignore[arg-type]


def test_supplement_is_linked_to_its_first_reply_by_cid() -> None:
    seen = FirstSeen()
    assert seen.observe(eim_reply(status="PENDING", ncic="QUEUED")) is None
    first = seen.observe(eim_reply(supplement=True))
    assert first is not None and (first.mid, first.status) == ("eim-1", "PENDING")
    # A duplicate answer (same cid, resubmitted mid) does not overwrite the first status.
    seen.observe(eim_reply(status="COMPLETE", duplicate=True))
    again = seen.observe(eim_reply(supplement=True))
    assert again is not None and again.status == "PENDING"


def test_memory_is_bounded_oldest_forgotten_first() -> None:
    seen = FirstSeen(capacity=3)
    for i in range(10):
        seen.observe(eim_reply(mid=f"m{i}", cid=f"c{i}", status="PENDING", ncic="QUEUED"))
    assert len(seen) == 3
    assert "c6" not in seen and "c9" in seen
    assert seen.observe(eim_reply(cid="c2", supplement=True)) is None  # forgotten: "not seen"
    seen.observe(eim_reply(cid="c7", supplement=True))  # touching c7 keeps it over c8
    seen.observe(eim_reply(mid="m10", cid="c10"))
    assert "c7" in seen and "c8" not in seen


def test_console_links_a_supplement_even_when_the_first_reply_was_filtered_out() -> None:
    c, out, _err = console(filter=ReplyFilter.parse(status=["COMPLETE"]))
    assert not c.handle(eim_reply(status="PENDING", ncic="QUEUED"))
    assert c.handle(eim_reply(supplement=True))
    assert "SUPPLEMENT to eim-1 (cid c-eim-1) - was PENDING, now COMPLETE" in out.getvalue()
    assert (c.counts.read, c.counts.shown, c.counts.supplements) == (2, 1, 1)
    assert c.counts.by_status["COMPLETE"] == 1 and c.counts.by_status["PENDING"] == 0


def test_json_mode_writes_one_valid_json_object_per_line() -> None:
    c, out, _ = console(json=True)
    for reply in (eim_reply(), reject_reply(), qim_reply()):
        c.handle(reply)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["status"] for line in lines] == ["COMPLETE", "REJECTED", "COMPLETE"]


def test_images_are_saved_by_imn_and_system(tmp_path: Path) -> None:
    c, out, _ = console(save_images=tmp_path / "photos")
    c.handle(qim_reply(imn="X17A4394M0", image=b"\xff\xd8first\xff\xd9"))
    path = tmp_path / "photos" / "X17A4394M0-LEADS.jpg"
    assert path.read_bytes() == b"\xff\xd8first\xff\xd9"
    assert f"saved {path}" in out.getvalue()
    c.handle(qim_reply(cid="c-q-2", imn="X17A4394M0", image=b"\xff\xd8second\xff\xd9"))
    assert path.read_bytes() == b"\xff\xd8second\xff\xd9"  # the image as last seen
    assert c.counts.images_saved == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["X17A4394M0-LEADS.jpg"]


def test_an_imn_that_is_not_a_plain_name_never_becomes_a_path(tmp_path: Path) -> None:
    bad = ImageRecord(system="LEADS", imn="../../etc/x", imt="M", doi="20230216", image=b"x")
    assert image_filename(bad) is None
    reply = msgspec.structs.replace(qim_reply(), images=[bad])
    assert save_images(reply, tmp_path) == {}
    assert list(tmp_path.iterdir()) == []


def test_unreadable_values_are_counted_and_skipped() -> None:
    c, _out, err = console()
    assert not c.handle_value(b"not json", " at t[0]@5")
    assert not c.handle_value(b'{"cid": "c"}')  # no status
    assert not c.handle_value(None)
    assert c.handle_value(encode(eim_reply()))
    assert c.counts.unreadable == 3 and c.counts.shown == 1
    assert "skipped an unreadable reply at t[0]@5" in err.getvalue()


def test_footer_every_n_shown_replies_goes_to_stderr() -> None:
    c, out, err = console(footer_every=2)
    for i in range(5):
        c.handle(eim_reply(mid=f"m{i}", cid=f"c{i}"))
    footers = err.getvalue().splitlines()
    assert len(footers) == 2
    assert footers[-1].startswith("switch console: 4 shown of 4 read (COMPLETE 4,")
    assert "switch console" not in out.getvalue()


class _Sink(io.TextIOBase):
    """A stream that keeps nothing, like a terminal that has scrolled."""

    def write(self, s: str) -> int:
        return len(s)


def test_memory_stays_flat_once_the_link_memory_is_full() -> None:
    import gc
    import tracemalloc

    c = Console(TailOptions(remember=500, footer_every=1000), _Sink(), _Sink())
    replies = [eim_reply(mid=f"m{i}", cid=f"c{i}", status="PENDING", ncic="QUEUED") for i in range(8000)]
    tracemalloc.start()
    try:
        for r in replies[:2000]:  # fill the LRU, and turn it over, while traced
            c.handle(r)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for r in replies[2000:]:
            c.handle(r)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(c.firsts) == 500
    assert grown < 4096, grown  # 6000 more replies: nothing kept beyond the bound
