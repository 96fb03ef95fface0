"""A partition's store follows it to another host, on the real broker: LEADS on one home
applies entries and stops; LEADS on a second, empty home (another host) gets the
partitions, rebuilds their stores from the changelog topic, answers queries with the
images the first one stored, and answers a redelivered entry with the first one's stored
answer, without applying it again."""

from __future__ import annotations

import pytest

from switch.contract.messages import QueryImage
from switch.settings import Settings
from tests.services.helpers import OWNER, RECORDS, SOR_LNO, VOAY_LNO, VOAY_OWNER, jpeg, leg, mid
from tests.services.kafka_helpers import (
    answers,
    image_count,
    producer,
    read_until,
    reader,
    seed,
    send_legs,
    service,
)
from tests.services.test_rules import eim

pytestmark = pytest.mark.kafka


async def test_a_store_is_rebuilt_on_another_host_from_the_changelog(
    kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    a = kafka_settings
    b = a.with_overrides(home=tmp_path_factory.mktemp("other-host"))
    seed(a, RECORDS)  # only the first host has the records
    entries = [leg(eim(SOR_LNO, OWNER), "LEADS", cid="e-sor", imn="I000000077"),
               leg(eim(VOAY_LNO, VOAY_OWNER, shade=5), "LEADS", cid="e-voay")]
    async with service(a, "LEADS"), producer(a) as p, reader(a, a.topics.responses) as rs:
        await send_legs(p, a, entries)
        first = answers(await read_until(rs, lambda v: len(answers(v)) >= 2))
    assert first[("e-sor", "LEADS")].leg.status == "ACK"
    assert image_count(a, "LEADS") == 2

    async with service(b, "LEADS"), producer(b) as p, reader(b, b.topics.responses) as rs:
        queries = [leg(QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO), "LEADS", cid="q-sor"),
                   leg(QueryImage(mid=mid(), ori=VOAY_OWNER, lno=VOAY_LNO), "LEADS",
                       cid="q-voay")]
        await send_legs(p, b, [*queries, entries[0]])  # the entry again: a redelivery
        # From the topic's start: the first host's answer to e-sor, then the second's.
        values = await read_until(
            rs, lambda v: {("q-sor", "LEADS"), ("q-voay", "LEADS")} <= set(answers(v))
            and sum(b'"e-sor"' in x for x in v) >= 2)
        got = answers(values)
    assert sum(b'"e-sor"' in x for x in values) == 2
    [image] = got[("q-sor", "LEADS")].images
    assert image.imn == "I000000077" and image.image == jpeg(1)
    assert got[("q-voay", "LEADS")].leg.status == "ACK"
    again = got[("e-sor", "LEADS")]  # the last one: the second host's
    assert again.leg == first[("e-sor", "LEADS")].leg  # the stored answer, byte for byte
    assert again.answered == first[("e-sor", "LEADS")].answered
    assert image_count(b, "LEADS") == 2  # rebuilt, and nothing applied twice
