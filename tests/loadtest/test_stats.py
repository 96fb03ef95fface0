"""HDR histograms, counts and the summary of a replay."""

from __future__ import annotations

from switch.loadtest.stats import (
    Recorder,
    decode_histogram,
    describe,
    format_summary,
    new_histogram,
    record_ms,
)


def test_percentiles_are_exact_to_three_digits() -> None:
    h = new_histogram()
    for ms in range(1, 1001):  # 1 .. 1000 ms
        record_ms(h, float(ms))
    d = describe(h)
    assert d["count"] == 1000
    assert abs(d["p50"] - 500) <= 0.5
    assert abs(d["p99"] - 990) <= 1.0
    assert abs(d["p99.9"] - 999) <= 1.0
    assert abs(d["max"] - 1000) <= 1.0 and d["min"] == 1.0
    assert describe(new_histogram()) == {"count": 0}


def test_histograms_encode_and_add_up() -> None:
    r = Recorder()
    for i in range(50):
        r.on_reply("QIM", 10.0 + i, "COMPLETE", {})
    s = r.summary(elapsed_s=1, offered_rate=50, send_span_s=1, reply_span_s=1, tail_s=0.1)
    h = decode_histogram(s["hdr"]["all"])
    h.add(decode_histogram(s["hdr"]["QIM"]))
    assert h.get_total_count() == 100


def _recorder() -> Recorder:
    r = Recorder()
    for i in range(10):
        r.on_sent("EIM", 0.5, None)
        r.on_reply("EIM", 20.0 + i, "COMPLETE", {"LEADS": ("ACK", 5.0), "NCIC": ("ACK", 6.0)})
    for _ in range(4):
        r.on_sent("QIM", 1.0, 30.0)
    r.on_reply("QIM", 40.0, "PARTIAL", {"LEADS": ("NOT_FOUND", 4.0), "NCIC": ("UNAVAILABLE", 1.0)})
    r.on_reply("QIM", 41.0, "COMPLETE", {"LEADS": ("NOT_FOUND", 4.0), "NCIC": ("SKIPPED", None)})
    r.on_missing("QIM", "q3.abc")
    r.on_sent("RAW", 0.1)
    r.no_reply_expected += 1
    r.skipped["skipped-dependency"] += 2
    r.on_missing("QIM", "q4.abc")
    return r


def test_summary_counts() -> None:
    s = _recorder().summary(elapsed_s=2.0, offered_rate=10.0, send_span_s=1.5, reply_span_s=2.0,
                            tail_s=0.05, file="t.jsonl", run_id="abc")
    assert s["sent"] == 15 and s["expected_replies"] == 14
    assert s["replies"] == 12 and s["missing"] == 2 and s["missing_mids"] == ["q3.abc", "q4.abc"]
    assert s["latency_ms"]["all"]["count"] == 12 == s["replies"]
    assert list(s["latency_ms"]) == ["all", "EIM", "QIM"]
    assert s["status"] == {"COMPLETE": 11, "PARTIAL": 1}
    assert s["leg_status"]["NCIC"] == {"ACK": 10, "SKIPPED": 1, "UNAVAILABLE": 1}
    assert s["leg_ms"]["NCIC"]["count"] == 11  # a skipped leg has no ms
    assert s["dependency_wait_ms"]["count"] == 4
    assert s["send_rate"] == 10.0 and s["reply_rate"] == 6.0


def test_summary_text() -> None:
    s = _recorder().summary(elapsed_s=2.0, offered_rate=10.0, send_span_s=1.5, reply_span_s=2.0,
                            tail_s=0.05, file="t.jsonl", run_id="abc")
    text = format_summary(s)
    assert "replies 12 of 14 expected, missing 2" in text
    assert "skipped skipped-dependency 2" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("latency ms"))
    assert header.split()[-2:] == ["COMPLETE", "PARTIAL"]
    row = next(line for line in lines if line.startswith("EIM"))
    assert row.split()[1] == "10"
    assert any(line.startswith("NCIC") and "UNAVAILABLE" not in line for line in lines)
    assert "MISSING replies by MKE: {'QIM': 2}" in text
