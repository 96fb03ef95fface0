"""Traffic generation: determinism, the mix, lifecycles that respect the domain's rules."""

from __future__ import annotations

import base64
import io
from collections import Counter

import pytest

from switch.contract.internal import RecordEntry
from switch.images.checks import inspect
from switch.loadtest.gen import (
    INVALID_KINDS,
    Generator,
    GenError,
    GenOptions,
    describe,
    generate,
    parse_image_kb,
    parse_mix,
)
from switch.loadtest.photos import PhotoCache, bucket_kb, bucket_of, make_photo
from switch.loadtest.traffic import (
    IMG_PREFIX,
    IMN_PREFIX,
    TrafficError,
    encode_line,
    parse_lines,
    write_lines,
)
from switch.settings import ImageSettings

SMALL = (3.0, 0.0)  # one size bucket of tiny photos: quick to make


def _bytes(records: list[RecordEntry], **kw: object) -> bytes:
    gen = Generator(records, GenOptions(**kw))  # type: ignore[arg-type]
    traffic = gen.run()
    buf = io.BytesIO()
    write_lines(buf, traffic.header, gen.image_lines(), traffic.steps)
    return buf.getvalue()


def test_same_seed_same_file_other_seed_other_file(records: list[RecordEntry]) -> None:
    a = _bytes(records, count=300, seed=5, image_kb=SMALL)
    b = _bytes(records, count=300, seed=5, image_kb=SMALL)
    c = _bytes(records, count=300, seed=6, image_kb=SMALL)
    assert a == b
    assert a != c


@pytest.mark.parametrize("mix", ["QIM=0.5,EIM=0.25,MII=0.15,XIM=0.1", "QIM=0.2,EIM=0.5,MII=0.2,XIM=0.1",
                                 "QIM=1", "EIM=1"])
def test_the_mix_is_kept(records: list[RecordEntry], mix: str) -> None:
    weights = parse_mix(mix)
    traffic = generate(records, GenOptions(count=1000, seed=2, mix=weights, invalid_rate=0.0,
                                           image_kb=SMALL))
    got = Counter(s.mke for s in traffic.steps)
    for mke, w in weights.items():
        assert abs(got[mke] / 1000 - w) < 0.03, (mke, got)  # 120 records hold 1440 EIMs


def test_invalid_rate_and_kinds(records: list[RecordEntry]) -> None:
    traffic = generate(records, GenOptions(count=3000, seed=3, invalid_rate=0.1, image_kb=SMALL))
    tags = Counter(s.tag for s in traffic.steps)
    invalid = sum(v for k, v in tags.items() if k.startswith("invalid:"))
    assert 0.08 < invalid / 3000 < 0.12
    assert {k.split(":", 1)[1] for k in tags if k != "valid"} == set(INVALID_KINDS)
    for s in traffic.steps:
        if s.tag == "invalid:noise":
            assert s.raw is not None and not s.expect_reply
        if s.tag == "invalid:garbage":
            assert s.raw is not None and s.raw_mid and s.expect_reply
            assert b'"mid":"' + s.raw_mid.encode() + b'"' in s.raw
        if s.tag.startswith("invalid:"):
            assert not s.dependencies()  # nothing waits on a reject, and a reject waits on nothing


def test_lifecycles_respect_the_rules_and_name_earlier_steps(records: list[RecordEntry]) -> None:
    """Replays what the file does to each record: never more active images than the
    limits, modify and cancel only of an image entered earlier and still active, and
    never the same photo twice among a record's active images."""
    traffic = generate(records, GenOptions(count=3000, seed=4, invalid_rate=0.0, image_kb=SMALL))
    by_lno = {r.lno: r for r in records}
    owner_of_step: dict[str, str] = {}
    active: dict[str, dict[str, tuple[str, str]]] = {}  # lno -> eim step -> (imt, image)
    seen: set[str] = set()
    for s in traffic.steps:
        assert s.request is not None
        for dep in s.dependencies():
            assert dep in seen
        seen.add(s.id)
        req = s.request
        assert s.key in by_lno and req["ori"] == by_lno[s.key].ori  # the owner sends
        images = active.setdefault(s.key, {})
        if req["mke"] == "EIM":
            assert req["lno"] == s.key
            imts = Counter(t for t, _ in images.values())
            assert imts[req["imt"]] < {"M": 1, "S": 1, "I": 10}[req["imt"]]
            assert req["image"] not in {img for _, img in images.values()}
            assert "19000101" < req["doi"] <= "20250101" and req["doi"] >= by_lno[s.key].dob
            images[s.id] = (req["imt"], req["image"])
            owner_of_step[s.id] = s.key
        elif req["mke"] in ("MII", "XIM"):
            ref = req["imn"][len(IMN_PREFIX):]
            assert owner_of_step[ref] == s.key and ref in images
            if req["mke"] == "XIM":
                del images[ref]
            elif "image" in req:
                others = {img for step, (_, img) in images.items() if step != ref}
                assert req["image"] not in others
                images[ref] = (images[ref][0], req["image"])
        else:
            keys = set(req) - {"mke", "mid", "ori", "term"}
            assert keys in ({"lno"}, {"nic"}, {"imn"}, {"nam", "sex", "dob"})
            if "imn" in keys:
                assert req["imn"][len(IMN_PREFIX):] in images
    info = describe(traffic)
    assert info["dependent"] > 1000  # sessions chain their steps


def test_sessions_follow_the_bulletin(records: list[RecordEntry]) -> None:
    """A session: query, enter, re-query by NAM/SEX/DOB (mostly), then modify or cancel."""
    traffic = generate(records, GenOptions(count=1500, seed=9, invalid_rate=0.0, image_kb=SMALL))
    steps = {s.id: s for s in traffic.steps}
    follows: Counter[tuple[str, str]] = Counter()
    for s in traffic.steps:
        if s.depends_on:
            follows[(steps[s.depends_on].mke, s.mke)] += 1
    assert follows[("EIM", "QIM")] > follows[("EIM", "XIM")]  # re-query after an entry
    assert follows[("XIM", "EIM")] > 0  # cancel, then enter again
    requeries = [s for s in traffic.steps if s.depends_on and steps[s.depends_on].mke in ("EIM", "MII")
                 and s.mke == "QIM"]
    assert sum(1 for s in requeries if s.request and "nam" in s.request) > len(requeries) / 2


def test_dependent_steps_are_far_apart(records: list[RecordEntry]) -> None:
    traffic = generate(records, GenOptions(count=2000, seed=1, image_kb=SMALL, sessions=40))
    index = {s.id: i for i, s in enumerate(traffic.steps)}
    gaps = sorted(i - index[d] for i, s in enumerate(traffic.steps) for d in s.dependencies())
    assert gaps[len(gaps) // 2] >= 20  # the median parent is 20 or more requests back


def test_eim_capacity_runs_out_into_modifies(records: list[RecordEntry]) -> None:
    few = records[:3]
    traffic = generate(few, GenOptions(count=60, seed=1, mix=parse_mix("EIM=1"), invalid_rate=0.0,
                                       image_kb=SMALL, sessions=3))
    got = Counter(s.mke for s in traffic.steps)
    assert got["EIM"] == 36  # 1 M + 1 S + 10 I on each of 3 records
    assert got["MII"] == 24


def test_images_are_placeholders_of_defined_images(records: list[RecordEntry]) -> None:
    gen = Generator(records, GenOptions(count=400, seed=1, image_kb=(20.0, 6.0)))
    traffic = gen.run()
    used = {s.request["image"][len(IMG_PREFIX):] for s in traffic.steps
            if s.request and str(s.request.get("image", "")).startswith(IMG_PREFIX)}
    assert used == set(traffic.images)
    sizes = [len(base64.b64decode(v)) for v in traffic.images.values()]
    assert 8_000 < sum(sizes) / len(sizes) < 32_000


def test_photos_hit_their_size_and_are_stored_as_they_are() -> None:
    settings = ImageSettings()
    for kb in (4, 12, 30, 55):
        data = make_photo(kb * 1024, seed=kb)
        assert abs(len(data) - kb * 1024) <= 0.06 * kb * 1024, (kb, len(data))
        header = inspect(data, settings)
        assert header.conforming  # fits the box, baseline, bare JFIF: passes unchanged
    big = make_photo(150 * 1024, seed=1)
    header = inspect(big, settings)
    assert not header.conforming and header.width > 480  # a camera-sized photo to be sized
    assert make_photo(30 * 1024, seed=3) == make_photo(30 * 1024, seed=3)


def test_photo_cache_avoids_images_active_on_the_record() -> None:
    import random

    cache = PhotoCache(seed=1, variants=2)
    rng = random.Random(1)
    first = cache.pick(5.0, rng)
    second = cache.pick(5.0, rng, avoid={first})
    third = cache.pick(5.0, rng, avoid={first, second})
    assert len({first, second, third}) == 3  # a third variant made on demand
    assert bucket_of(bucket_kb(30)) == 30


def test_option_errors() -> None:
    with pytest.raises(GenError):
        parse_mix("EIM=1,FOO=2")
    with pytest.raises(GenError):
        parse_mix("EIM=0")
    with pytest.raises(GenError):
        parse_image_kb("big")
    assert parse_image_kb("40") == (40.0, 10.0)
    with pytest.raises(GenError):
        GenOptions(count=1, date="2025-01-01").check()
    with pytest.raises(GenError):
        GenOptions(count=1, invalid_rate=2).check()


def test_traffic_file_round_trip_and_checks(records: list[RecordEntry]) -> None:
    gen = Generator(records, GenOptions(count=200, seed=1, image_kb=SMALL))
    traffic = gen.run()
    buf = io.BytesIO()
    write_lines(buf, traffic.header, gen.image_lines(), traffic.steps)
    again = parse_lines(buf.getvalue().splitlines())
    assert again.steps == traffic.steps and again.images == traffic.images
    assert again.header.params["seed"] == 1
    header = encode_line(traffic.header)
    step = traffic.steps[5]
    with pytest.raises(TrafficError, match="first line"):
        parse_lines([encode_line(step)])
    with pytest.raises(TrafficError, match="not an earlier step"):
        from switch.loadtest.traffic import Step

        parse_lines([header, encode_line(Step(id="a", request={"mke": "QIM"}, depends_on="b"))])
    with pytest.raises(TrafficError, match="image"):
        parse_lines([header, encode_line(Step(id="a", request={"image": "$img:nope"}))])
