"""Where a request's time goes, read from the local broker's own log segments.

Every record batch in a partition's `.log` files carries its append time (the internal
topics use LogAppendTime), and every transaction ends with a control batch (the commit
marker) in each partition it wrote: the moment a read_committed reader can see it. So,
after a run (stop the switch first, or read a copy), per request:

    .venv/bin/python bench/broker_log.py stages <home>/broker/data [--prefix switch]
        [--from EPOCH_S --to EPOCH_S]

prints p50/p90/p99 of: the router's commit (leg appended -> visible), the services (leg
visible -> last answer), the correlator's wait and work (last answer -> reply appended)
and its commit (reply appended -> visible); and

    .venv/bin/python bench/broker_log.py transactions <home>/broker/data [--from --to]

counts, per producer id, the commit markers by topic (how many partitions its
transactions touch) and the records it wrote. Used for BENCHMARKS.md run 5. Reads the
record batch format v2 (magic 2) only, uncompressed batches' records only.
"""

from __future__ import annotations

import argparse
import collections
import re
import struct
from collections.abc import Iterator
from pathlib import Path

CONTROL = 0x20
TRANSACTIONAL = 0x10
LOG_APPEND_TIME = 0x08
COMPRESSION = 0x07
CID = re.compile(rb'"cid":"([0-9a-f]{32})"')
KIND = re.compile(rb'"kind":"(\w+)"')


def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        x = b[i]
        i += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if not x & 0x80:
            return (result >> 1) ^ -(result & 1), i


def batches(path: Path) -> Iterator[tuple[int, int, int, list[tuple[int, bytes]]]]:
    """(attributes, max timestamp ms, producer id, [(timestamp ms, value)]) per batch."""
    data = path.read_bytes()
    i = 0
    while i + 61 <= len(data):
        _base, length = struct.unpack(">qi", data[i:i + 12])
        if length <= 0 or i + 12 + length > len(data):
            return
        body = data[i + 12:i + 12 + length]
        attrs, _lod, first_ts, max_ts, pid, _epoch, _seq, count = struct.unpack(">hiqqqhii", body[9:49])
        records: list[tuple[int, bytes]] = []
        if not attrs & COMPRESSION:
            j = 49
            for _ in range(count):
                size, j = _varint(body, j)
                end = j + size
                j += 1  # record attributes
                ts_delta, j = _varint(body, j)
                _off, j = _varint(body, j)
                klen, j = _varint(body, j)
                j += max(klen, 0)
                vlen, j = _varint(body, j)
                records.append((first_ts + ts_delta, body[j:j + vlen] if vlen >= 0 else b""))
                j = end
        yield attrs, max_ts, pid, records
        i += 12 + length


def _logs(data: Path, topic: str) -> list[Path]:
    return sorted(p for d in data.glob(f"{topic}-*") if d.name.rsplit("-", 1)[0] == topic
                  for p in d.glob("*.log"))


def visible(data: Path, topic: str) -> list[tuple[str, int, int, str]]:
    """(cid, appended ms, visible ms, kind) of each record naming a cid; a transactional
    record is visible at its commit marker."""
    out: list[tuple[str, int, int, str]] = []
    for log in _logs(data, topic):
        open_: dict[int, list[tuple[str, int, str]]] = {}
        for attrs, max_ts, pid, records in batches(log):
            if attrs & CONTROL:
                out.extend((cid, at, max_ts, kind) for cid, at, kind in open_.pop(pid, []))
                continue
            for ts, value in records:
                m = CID.search(value)
                if not m:
                    continue
                k = KIND.search(value)
                item = (m.group(1).decode(), max_ts if attrs & LOG_APPEND_TIME else ts,
                        k.group(1).decode() if k else "")
                if attrs & TRANSACTIONAL:
                    open_.setdefault(pid, []).append(item)
                else:
                    out.append((item[0], item[1], item[1], item[2]))
    return out


def _q(xs: list[int], p: float) -> int:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def stages(data: Path, prefix: str, lo: float, hi: float) -> None:
    legs: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for system in ("leads", "ncic"):
        for cid, at, seen, _ in visible(data, f"{prefix}.{system}.requests"):
            legs[cid].append((at, seen))
    answers: dict[str, list[int]] = collections.defaultdict(list)
    for cid, _at, seen, kind in visible(data, f"{prefix}.responses"):
        if kind == "answer":
            answers[cid].append(seen)
    replies: dict[str, tuple[int, int]] = {}
    for cid, at, seen, _ in visible(data, f"{prefix}.replies"):
        replies.setdefault(cid, (at, seen))
    rows = []
    for cid, (r_at, r_seen) in replies.items():
        if cid not in legs or cid not in answers:
            continue
        l_at = min(a for a, _ in legs[cid])
        if not lo * 1000 <= l_at <= hi * 1000:
            continue
        l_seen = max(s for _, s in legs[cid])
        last = max(answers[cid])
        rows.append((l_seen - l_at, last - l_seen, r_at - last, r_seen - r_at, r_seen - l_at))
    print(f"{len(rows)} requests with legs, answers and a reply")
    names = ("router commit (leg appended -> visible)", "services (leg visible -> last answer)",
             "correlator wait + work (last answer -> reply)", "correlator commit (reply -> visible)",
             "leg appended -> reply visible")
    for i, name in enumerate(names):
        xs = [r[i] for r in rows]
        if xs:
            print(f"{name:48s} p50 {_q(xs, .5):6d}  p90 {_q(xs, .9):6d}  p99 {_q(xs, .99):6d} ms")


def transactions(data: Path, lo: float, hi: float) -> None:
    markers: collections.Counter[int] = collections.Counter()
    touched: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    written: collections.Counter[tuple[int, str]] = collections.Counter()
    for d in sorted(p for p in data.iterdir() if p.is_dir()):
        topic = d.name.rsplit("-", 1)[0]
        for log in d.glob("*.log"):
            for attrs, max_ts, pid, records in batches(log):
                if not lo * 1000 <= max_ts <= hi * 1000 or pid < 0:
                    continue
                if attrs & CONTROL:
                    markers[pid] += 1
                    touched[pid][topic] += 1
                else:
                    written[(pid, topic)] += len(records)
    for pid in sorted(touched):
        print(f"producer {pid}: {markers[pid]} commit markers " + str(dict(touched[pid])))
    for (pid, topic), n in sorted(written.items()):
        print(f"  producer {pid} wrote {n} records to {topic}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("stages", "transactions"))
    p.add_argument("data", type=Path, help="the broker's log.dirs, e.g. <home>/broker/data")
    p.add_argument("--prefix", default="switch", help="topic prefix")
    p.add_argument("--from", dest="lo", type=float, default=0.0, help="epoch seconds")
    p.add_argument("--to", dest="hi", type=float, default=float("inf"), help="epoch seconds")
    a = p.parse_args()
    if a.what == "stages":
        stages(a.data, a.prefix, a.lo, a.hi)
    else:
        transactions(a.data, a.lo, a.hi)


if __name__ == "__main__":
    main()
