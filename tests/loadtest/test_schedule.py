"""Open-model schedules, unique mids, placeholders."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from switch.contract.fields import check_mid
from switch.loadtest.schedule import (
    ScheduleError,
    Unresolvable,
    kafka_key,
    original_offsets,
    plan,
    poisson_offsets,
    render,
    uniform_offsets,
    unique_mid,
)
from switch.loadtest.traffic import Step


def _steps(n: int, **kw: object) -> list[Step]:
    return [Step(id=f"s{i}", request={"mke": "QIM", "mid": f"m{i}", "ori": "IL0160000"}, **kw)  # type: ignore[arg-type]
            for i in range(n)]


def test_uniform_is_evenly_spaced() -> None:
    assert uniform_offsets(4, 2.0) == [0.0, 0.5, 1.0, 1.5]


def test_poisson_has_the_rate_and_is_seeded() -> None:
    a = poisson_offsets(20_000, 100.0, seed=3)
    assert a == poisson_offsets(20_000, 100.0, seed=3)
    assert a != poisson_offsets(20_000, 100.0, seed=4)
    assert a[0] == 0.0 and all(x <= y for x, y in itertools.pairwise(a))
    assert 19_000 / a[-1] < 100.0 * 1.05 and 21_000 / a[-1] > 100.0 * 0.95
    gaps = sorted(y - x for x, y in itertools.pairwise(a))
    median = gaps[len(gaps) // 2]
    assert abs(median - 0.6931 / 100.0) < 0.0005  # exponential: median = ln 2 / rate


def test_original_timing_scales_by_speed() -> None:
    steps = [Step(id="a", request={}, t=10.0), Step(id="b", request={}, t=11.0),
             Step(id="c", request={}), Step(id="d", request={}, t=14.0)]
    assert original_offsets(steps, 1.0) == [0.0, 1.0, 1.0, 4.0]
    assert original_offsets(steps, 2.0) == [0.0, 0.5, 0.5, 2.0]
    chosen, offsets = plan(steps, original_timing=True, speed=2.0, duration=1.0)
    assert [s.id for s in chosen] == ["a", "b", "c"] and offsets == [0.0, 0.5, 0.5]


def test_plan_counts() -> None:
    steps = _steps(100)
    assert len(plan(steps, rate=10, count=30)[0]) == 30
    assert len(plan(steps, rate=10, duration=2.5)[0]) == 25
    assert len(plan(steps, rate=10, duration=60)[0]) == 100  # never more than the file
    assert len(plan(steps, rate=10)[0]) == 100
    _chosen, offsets = plan(steps, rate=4, count=3, arrivals="uniform")
    assert offsets == [0.0, 0.25, 0.5]
    with pytest.raises(ScheduleError):
        plan(steps)
    with pytest.raises(ScheduleError):
        plan(steps, rate=1, arrivals="bursty")
    with pytest.raises(ScheduleError):
        plan(steps, original_timing=True, speed=0)


def test_unique_mids_stay_valid() -> None:
    assert unique_mid("g1-000001", "ab12cd") == "g1-000001.ab12cd"
    long = "x" * 64
    u = unique_mid(long, "ab12cd")
    assert len(u) <= 64 and check_mid(u) is None and u != unique_mid("y" * 64, "ab12cd")
    assert check_mid(unique_mid("a:b.c-d_e", "000000")) is None


def test_render_fills_placeholders() -> None:
    step = Step(id="s2", request={"mke": "MII", "mid": "m2", "ori": "IL0160000",
                                  "imn": "$imn:s1", "image": "$img:p1"})
    value, mid = render(step, "r1", {"s1": "I000000012"}, {"p1": "QUJD"})
    assert mid == "m2.r1"
    assert msgspec.json.decode(value) == {"mke": "MII", "mid": "m2.r1", "ori": "IL0160000",
                                          "imn": "I000000012", "image": "QUJD"}
    assert step.request is not None and step.request["imn"] == "$imn:s1"  # the step is unchanged
    with pytest.raises(Unresolvable):
        render(step, "r1", {"s1": None}, {"p1": "QUJD"})
    with pytest.raises(Unresolvable):
        render(step, "r1", {}, {"p1": "QUJD"})


def test_render_raw_rewrites_its_mid() -> None:
    raw = b'{"mid":"g1-7","ori":"IL0160000","x":"\xff'
    value, mid = render(Step(id="r", raw=raw, raw_mid="g1-7"), "aa", {}, {})
    assert mid == "g1-7.aa" and value == b'{"mid":"g1-7.aa","ori":"IL0160000","x":"\xff'
    value, mid = render(Step(id="n", raw=b"\xff\x00", expect_reply=False), "aa", {}, {})
    assert mid is None and value == b"\xff\x00"


def test_keys_and_dependencies() -> None:
    s = Step(id="s3", request={"ori": "IL0160000", "imn": "$imn:s1"}, depends_on="s2")
    assert kafka_key(s) == b"IL0160000"
    assert kafka_key(Step(id="k", request={}, key="X17A4394")) == b"X17A4394"
    assert s.dependencies() == ["s1", "s2"] and s.references() == ["s1"]
