"""A resubmitted QIM still gets its original reply, photos and all, byte for byte, now that
the correlator keeps a finished reply's photos once by SHA-256 instead of with every
reply: on a real broker, with the local cache lost (the changelog alone answers), and after
the record has gained another photo (the original reply, not today's)."""

from __future__ import annotations

import pytest

from services.seeding import seed_stores
from switch.client import SwitchClient, new_mid
from switch.contract.internal import Finished, changelog_decoder
from switch.correlator.images import IMAGE_KEY_PREFIX
from switch.kafka.readall import read_to_end
from switch.settings import Settings
from tests.flow.conftest import b64, photo
from tests.flow.test_state import halt, start_correlator, start_others

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_a_duplicate_qim_gets_its_original_photos_from_the_changelog(
    kafka_settings: Settings,
) -> None:
    settings = kafka_settings.with_overrides(deadline_s=10.0)
    rec = next(r for r in seed_stores(settings, 30, 21) if r.rtype == "SOR")
    others = await start_others(settings)
    corr, cpart = await start_correlator(settings)
    try:
        async with SwitchClient(settings) as client:
            for imt, colour in (("M", (200, 40, 40)), ("S", (40, 200, 40))):
                entered = await client.request({
                    "mke": "EIM", "mid": new_mid("e"), "ori": rec.ori, "lno": rec.lno,
                    "imt": imt, "doi": "20250101", "image": b64(photo(colour=colour))})
                assert entered.status == "COMPLETE", entered.text
            mids = [new_mid("q") for _ in range(12)]
            originals = []
            for mid in mids:
                originals.append(await client.request(
                    {"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno}))
            photos = {im.image for im in originals[0].images}
            assert len(originals[0].images) == 4 and len(photos) == 2  # both systems, 2 photos
            # The changelog: every reply without its photos, each photo once a partition.
            keys: list[tuple[int, str]] = []
            finished: list[Finished] = []

            def scan(r) -> None:  # type: ignore[no-untyped-def]
                key = r.key.decode()
                if key.startswith(IMAGE_KEY_PREFIX):
                    keys.append((r.partition, key))
                    assert r.value in photos
                elif r.value is not None and key.startswith("~") is False:
                    rec_ = changelog_decoder.decode(r.value)
                    if isinstance(rec_, Finished) and rec_.mid in mids:
                        finished.append(rec_)

            await read_to_end(settings, settings.topics.correlator, scan)
            assert len(finished) == len(mids)
            assert all(f.images is not None and len(f.images) == 4 for f in finished)
            assert all(b64(p).encode()[:200] not in bytes(f.reply) for f in finished for p in photos)
            assert len(keys) == len(set(keys)) and len(keys) <= 2 * settings.topics.partitions
            assert corr.store.image_count() == len(keys)

            # The record gains a third photo; the local cache is lost (a new host).
            third = await client.request({
                "mke": "EIM", "mid": new_mid("e"), "ori": rec.ori, "lno": rec.lno,
                "imt": "I", "doi": "20250101", "image": b64(photo(colour=(40, 40, 200)))})
            assert third.status == "COMPLETE", third.text
            await halt(cpart)
            (settings.home / "correlator" / "replies-0.sqlite3").unlink()
            corr, cpart = await start_correlator(settings)
            assert corr.last_restore["changelog"] >= len(mids) + len(keys)
            for mid, original in ((mids[0], originals[0]), (mids[-1], originals[-1])):
                await client.send({"mke": "QIM", "mid": mid, "ori": rec.ori, "lno": rec.lno})
                again = (await client.wait(mid, count=2))[1]
                assert again.duplicate is True and not original.duplicate
                assert (again.cid, again.status, again.ori) == (original.cid, original.status,
                                                                original.ori)
                assert again.images == original.images  # every field, every byte of each photo
                assert again.legs == original.legs and again.text == original.text
    finally:
        await halt(cpart, others)
