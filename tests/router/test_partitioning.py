"""The pure parts of scaling out: instance ids, the ORI a request is re-keyed by, which
partition owns it, that the router's assignor keeps the two input topics co-partitioned,
and the child processes `switch up --instances N` runs."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.partitioner import DefaultPartitioner

from switch.cli.run import instance_from
from switch.router.dedupe import MidMemory, MidRecord
from switch.router.partitioning import ori_of, ori_partition, owner_partition, validate_instance
from switch.supervisor import child_specs


@pytest.mark.parametrize("good", ["0", "2", "a-b_C9", "x" * 64])
def test_instance_ids_accepted(good: str) -> None:
    assert validate_instance(good) == good


@pytest.mark.parametrize("bad", ["", "a.b", "a/b", "../x", "a b", "é", "x" * 65, "0\n"])
def test_instance_ids_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        validate_instance(bad)


def test_instance_flag_wins_over_environment() -> None:
    assert instance_from("3", {"SWITCH_INSTANCE": "7"}) == "3"
    assert instance_from(None, {"SWITCH_INSTANCE": "7"}) == "7"
    assert instance_from(None, {}) == "0"


def test_ori_read_without_validating_the_rest() -> None:
    image = base64.b64encode(b"\xff\xd8" + b"x" * 5000).decode()
    raw = json.dumps({"mke": "EIM", "mid": "m1", "ori": "IL0450300", "image": image}).encode()
    assert ori_of(raw) == "IL0450300"
    # Invalid elsewhere, still re-keyed by its ORI: the owner judges it.
    assert ori_of(b'{"mke": 5, "ori": "IL0450300", "lno": []}') == "IL0450300"


@pytest.mark.parametrize("raw", [
    None, b"", b"not json", b"[1,2]", b'{"mid": "m"}', b'{"ori": 5}', b'{"ori": ""}',
    b'{"ori": "' + b"A" * 65 + b'"}', b'{"ori": "IL0450300"', b"\xff\xfe",
])
def test_no_ori_means_handled_where_it_arrived(raw: bytes | None) -> None:
    assert ori_of(raw) is None
    assert owner_partition(raw, 2, 3) == 2


@pytest.mark.parametrize("partitions", [1, 2, 3, 7, 10])
def test_ori_partition_is_kafkas_default_partitioner(partitions: int) -> None:
    """A producer keying by ORI (CONTRACT.md) lands where the router would forward it: no
    extra hop. Checked against aiokafka's partitioner (murmur2, as the Java client)."""
    parts = list(range(partitions))
    for i in range(300):
        ori = f"IL{i:07d}"
        assert ori_partition(ori, partitions) == DefaultPartitioner()(ori.encode(), parts, parts)
    with pytest.raises(ValueError):
        ori_partition("IL0450300", 0)


def test_owner_partition_spreads_oris() -> None:
    raw = [json.dumps({"ori": f"IL{i:07d}"}).encode() for i in range(300)]
    owners = {owner_partition(r, 0, 3) for r in raw}
    assert owners == {0, 1, 2}


class _Cluster:
    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = topics

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.topics[topic]))


@pytest.mark.parametrize("members", [1, 2, 3, 4])
def test_range_assignor_keeps_requests_and_byori_co_partitioned(members: int) -> None:
    topics = ["s.requests", "s.requests.byori"]
    cluster = _Cluster({t: 3 for t in topics})
    meta = {f"m{i}": RangePartitionAssignor.metadata(set(topics)) for i in range(members)}
    out = RangePartitionAssignor.assign(cluster, meta)
    owned_by: dict[str, dict[str, set[int]]] = {}
    for member, assignment in out.items():
        owned_by[member] = {t: set(ps) for t, ps in assignment.assignment}
    for member, by_topic in owned_by.items():
        assert by_topic.get("s.requests", set()) == by_topic.get("s.requests.byori", set()), member
    assert set().union(*(b.get("s.requests", set()) for b in owned_by.values())) == {0, 1, 2}


def test_offset_marks_kept_highest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    mem = MidMemory(3600, tmp_path / "m.sqlite3")
    assert mem.mark("s.requests", 1) is None
    mem.remember_many([("IL1/m", MidRecord(fp="f", cid="c", ts=1.0))], {1: 5},
                      {("s.requests", 1): 40})
    mem.remember_many([], {1: 3}, {("s.requests", 1): 12, ("s.requests.byori", 1): 2})
    assert mem.mark("s.requests", 1) == 40
    assert mem.mark("s.requests.byori", 1) == 2
    assert mem.seen() == {1: 5}
    mem.forget_partition(1)  # the mids topic was recreated: read again from its start
    assert mem.seen() == {} and len(mem) == 1


def test_child_processes_of_switch_up() -> None:
    specs = child_specs(2)
    assert [s.label for s in specs] == ["leads.0", "ncic.0", "correlator.0", "router.0",
                                        "correlator.1", "router.1", "leads.1", "ncic.1"]
    assert specs[3].argv()[-3:] == ["router", "--instance", "0"]
    assert specs[7].argv()[-3:] == ["ncic", "--instance", "1"]
    with pytest.raises(ValueError):
        child_specs(0)


def test_mark_record_roundtrip() -> None:
    from switch.router.dedupe import OffsetMark, mark_key, offset_mark_decoder
    assert offset_mark_decoder.decode(msgspec.json.encode(OffsetMark(next=9))).next == 9
    assert mark_key("s.requests").startswith("~")


def test_a_batch_dropped_across_a_rebalance_is_read_again_never_below_the_restore() -> None:
    from types import SimpleNamespace

    from aiokafka import TopicPartition

    from switch.kafka.clients import rewind_dropped

    a, b, gone = (TopicPartition("s.requests", p) for p in range(3))
    seeks: dict[TopicPartition, int] = {}
    consumer = SimpleNamespace(assignment=lambda: {a, b},
                               seek=lambda tp, off: seeks.__setitem__(tp, off))
    recs = lambda first: [SimpleNamespace(offset=first + i) for i in range(3)]  # noqa: E731
    # a: fetched after the restore started it at 10: read from 10 again, not skipped.
    # b: fetched before; meanwhile another instance committed up to 50: start there.
    rewind_dropped(consumer, {a: recs(10), b: recs(20), gone: recs(5)},  # type: ignore[arg-type]
                   {a: 10, b: 50})
    assert seeks == {a: 10, b: 50}
