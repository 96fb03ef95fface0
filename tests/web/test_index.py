"""The web console's memory (switch/web/index.py): pure, no Kafka."""

from __future__ import annotations

import json

import msgspec

from switch.contract.internal import LegAnswer, Manifest
from switch.contract.messages import AuditEntry, DeadLetter, ImageRecord, Leg, Reply
from switch.web.index import Board, LegLatency, Rate, TransactionIndex

JPEG = b"\xff\xd8\xff\xe0" + b"photo-bytes" * 50


def audit(cid: str, event: str, ts: str, **kw: str) -> AuditEntry:
    return AuditEntry(ts=ts, component=kw.pop("component", "router"), event=event, cid=cid, **kw)


def qim_reply(cid: str, mid: str, **kw: object) -> Reply:
    return Reply(mid=mid, cid=cid, mke="QIM", ori="IL0160000", status="COMPLETE",
                 legs={"LEADS": Leg(status="ACK", imn="X1M0", ms=3.0)},
                 images=[ImageRecord(system="LEADS", imn="X1M0", imt="M", doi="20250110",
                                     image=JPEG, lno="X1")],
                 ts="2025-01-10T00:00:01.000Z", **kw)  # type: ignore[arg-type]


def test_search_finds_a_transaction_by_cid_mid_lno_and_imn_with_hop_times() -> None:
    idx = TransactionIndex()
    idx.add_audit(audit("c1", "routed", "2025-01-10T00:00:00.250Z", mid="m1", lno="X1"))
    idx.add_audit(audit("c1", "received", "2025-01-10T00:00:00.000Z", mid="m1", lno="X1"))
    idx.add_audit(audit("c1", "replied", "2025-01-10T00:00:01.000Z", component="correlator",
                        mid="m1", imn="X1M0"))
    idx.add_audit(audit("c2", "received", "2025-01-10T00:00:02.000Z", mid="m2", lno="Y2"))
    idx.add_reply(qim_reply("c1", "m1"))
    for q in ("c1", "m1", "x1", "X1M0", " x1m0 "):
        found = idx.search(q)
        assert [t["cid"] for t in found] == ["c1"], q
    t = idx.search("c1")[0]
    assert [(h["event"], h["since_ms"]) for h in t["hops"]] == [
        ("received", 0.0), ("routed", 250.0), ("replied", 1000.0)]
    assert t["replies"][0]["images"][0]["bytes"] == len(JPEG)
    assert "photo-bytes" not in json.dumps(t)  # the search never carries image bytes
    assert idx.search("nope") == [] and idx.search("") == []


def test_a_transaction_is_found_by_its_trace_id_and_shows_it() -> None:
    idx = TransactionIndex()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    idx.add_audit(audit("c1", "received", "2025-01-10T00:00:00.000Z", mid="m1"), trace)
    idx.add_audit(audit("c1", "answered", "2025-01-10T00:00:00.100Z", component="leads"), trace)
    idx.add_audit(audit("c2", "received", "2025-01-10T00:00:00.200Z", mid="m2"))
    found = idx.search(trace.upper())
    assert [t["cid"] for t in found] == ["c1"]
    assert found[0]["trace_id"] == trace and len(found[0]["hops"]) == 2
    assert idx.search("c2")[0]["trace_id"] is None


def test_a_transaction_shows_its_manifest_and_answers_without_image_bytes() -> None:
    idx = TransactionIndex()
    idx.add_manifest(Manifest(cid="c1", mid="m1", ori="IL0160000", mke="QIM",
                              expected=["LEADS"], skipped={"NCIC": "VOAY RECORD: LEADS ONLY"},
                              deadline=0.0, created=0.0, lno="X1", timeout_s=10.0),
                     "2025-01-10T00:00:00.010Z")
    idx.add_answer(LegAnswer(cid="c1", system="LEADS", leg=Leg(status="ACK", imn="X1M0", ms=4.0,
                                                               text="LEADS ACKNOWLEDGMENT"),
                             images=[ImageRecord(system="LEADS", imn="X1M0", imt="M",
                                                 doi="20250110", image=JPEG, lno="X1")]),
                   "2025-01-10T00:00:00.020Z")
    for q in ("m1", "x1", "X1M0"):
        assert [t["cid"] for t in idx.search(q)] == ["c1"], q
    t = idx.search("c1")[0]
    assert t["manifest"]["expected"] == ["LEADS"] and "NCIC" in t["manifest"]["skipped"]
    assert t["manifest"]["ts"] == "2025-01-10T00:00:00.010Z"
    assert [(a["system"], a["status"], a["images"], a["ts"]) for a in t["answers"]] == [
        ("LEADS", "ACK", 1, "2025-01-10T00:00:00.020Z")]
    assert "photo-bytes" not in json.dumps(t)


def test_the_oldest_transaction_is_forgotten_with_its_lookups() -> None:
    idx = TransactionIndex(capacity=2)
    for i in range(3):
        idx.add_audit(audit(f"c{i}", "received", "2025-01-10T00:00:00.000Z", mid=f"m{i}", lno=f"L{i}"))
    assert len(idx) == 2
    assert idx.search("m0") == [] and idx.search("L0") == [] and idx.search("c0") == []
    assert idx.search("m2")[0]["cid"] == "c2"
    assert ("lno", "L0") not in idx._by  # no lookup outlives its transaction


def test_rate_counts_the_last_minute_only() -> None:
    now = [1000.0]
    rate = Rate(lambda: now[0], window=60.0)
    for _ in range(30):
        rate.tick()
    assert rate.per_second() == 0.5
    now[0] += 61
    assert rate.per_second() == 0.0


def test_the_chart_points_are_the_last_seconds_rate_and_the_legs_latency() -> None:
    now = [1000.0]
    board = Board(lambda: now[0])
    for i, ms in enumerate([10.0, 20.0, 30.0, 40.0, 500.0]):
        board.add_reply(msgspec.structs.replace(
            qim_reply(f"c{i}", f"m{i}"), legs={"LEADS": Leg(status="ACK", ms=ms),
                                                "NCIC": Leg(status="ACK", ms=ms / 2)}))
    board.add_reply(msgspec.structs.replace(qim_reply("c0", "m0"), duplicate=True,
                                            legs={"LEADS": Leg(status="ACK", ms=9999.0)}))
    s = board.stats()
    assert s["rate_now_per_s"] == round(6 / 5, 2)  # six replies in the last 5 s
    assert (s["leg_ms_p50"], s["leg_ms_p99"]) == (30.0, 500.0)  # the slowest leg; no duplicate
    now[0] += 11
    s = board.stats()
    assert s["rate_now_per_s"] == 0.0 and s["leg_ms_p50"] is None and s["leg_ms_p99"] is None


def test_board_links_a_supplement_counts_and_keeps_dead_letters_without_raw() -> None:
    board = Board(lambda: 0.0)
    first = board.add_reply(Reply(mid="m1", cid="c1", mke="EIM", ori="IL0160000", status="PENDING"))
    assert first["first"] is None
    sup = board.add_reply(Reply(mid="m1", cid="c1", mke="EIM", ori="IL0160000", status="COMPLETE",
                                supplement=True))
    assert sup["first"] == {"mid": "m1", "status": "PENDING"}
    pushed = board.add_reply(qim_reply("c2", "m2"))
    assert pushed["images"][0]["image"]  # the page's <img> gets the photo, as base64
    view = board.add_dead_letter(DeadLetter(reason="not JSON", topic="t.requests", partition=1,
                                            offset=7, key="k", raw=b"secret-raw", raw_bytes=10,
                                            key_bytes=1), partition=0, offset=3)
    assert "raw" not in view and view["raw_bytes"] == 10 and view["dlq_offset"] == 3
    stats = board.stats()
    assert stats["by_status"] == {"COMPLETE": 2, "PARTIAL": 0, "PENDING": 1, "REJECTED": 0}
    assert stats["supplements"] == 1 and stats["dead_letters"] == 1 and stats["replies"] == 3


def test_the_console_counts_an_answers_photos_without_decoding_them() -> None:
    from switch.web.index import AnswerView, response_view_decoder

    answer = LegAnswer(cid="c2", system="NCIC", leg=Leg(status="ACK", imn="I100000001", ms=3.0),
                       images=[ImageRecord(system="NCIC", imn="I100000001", imt="M", doi="20250110",
                                           image=JPEG, lno="X2")] * 2)
    view = response_view_decoder.decode(msgspec.json.encode(answer))
    assert isinstance(view, AnswerView)
    assert (view.cid, view.system, view.leg.imn, len(view.images)) == ("c2", "NCIC", "I100000001", 2)
    assert not hasattr(view.images[0], "image")  # the photo's bytes were skipped, not decoded
    manifest = Manifest(cid="c2", mid="m2", ori="IL0160000", mke="QIM", expected=["NCIC"], skipped={},
                        deadline=0.0, created=0.0, lno="X2", timeout_s=10.0)
    assert response_view_decoder.decode(msgspec.json.encode(manifest)) == manifest
    idx = TransactionIndex()
    idx.add_answer(view, "2025-01-10T00:00:00.020Z")
    assert [(a["system"], a["images"]) for a in idx.search("c2")[0]["answers"]] == [("NCIC", 2)]


def test_leg_latency_keeps_only_its_window_with_no_page_asking() -> None:
    """Nobody asks for percentiles while no page is open: the samples must still be pruned
    as replies arrive, or the `switch up` parent grows with every reply (the soak found it)."""
    now = [0.0]
    lat = LegLatency(lambda: now[0], window=10.0)
    for n in range(6000):  # ten minutes at 10 replies a second
        now[0] = n / 10
        lat.add(Reply(cid=f"c{n}", mid=f"m{n}", ori="IL0160000", mke="QIM", status="COMPLETE",
                      legs={"LEADS": Leg(status="ACK", ms=float(n % 100))}))
    assert len(lat._samples) <= 101  # ten seconds' worth, not 6000
    p50, p99 = lat.percentiles()
    assert p50 is not None and p99 is not None and p50 <= p99
