"""Whatever sequence of entries, modifies and cancels arrives, the limits hold."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from services.rules import LIMITS, apply_request
from services.store import Store
from switch.contract.messages import CancelImage, EnterImage, ModifyImage
from tests.services.helpers import RECORDS, VOAY_LNO, VOAY_OWNER, jpeg, leg, mid

NOW = datetime(2024, 6, 1, tzinfo=UTC)

op = st.one_of(
    st.tuples(st.just("EIM"), st.sampled_from("MSI"), st.integers(0, 15)),
    st.tuples(st.just("XIM"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("MII"), st.integers(0, 30), st.integers(0, 15)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, max_size=40))
def test_limits_and_uniqueness_hold(ops: list[tuple[str, object, int]]) -> None:
    with Store(":memory:", "LEADS") as store:
        store.insert_records(RECORDS)
        imns: list[str] = []
        for kind, arg, shade in ops:
            if kind == "EIM":
                request = EnterImage(
                    mid=mid(), ori=VOAY_OWNER, lno=VOAY_LNO, imt=str(arg), doi="20240101",
                    image=jpeg(shade),
                )
            elif not imns:
                continue
            elif kind == "XIM":
                request = CancelImage(
                    mid=mid(), ori=VOAY_OWNER, imn=imns[int(str(arg)) % len(imns)], doc="20240102"
                )
            else:
                request = ModifyImage(
                    mid=mid(), ori=VOAY_OWNER, imn=imns[int(str(arg)) % len(imns)],
                    image=jpeg(shade),
                )
            before = len(store.active_images(VOAY_LNO))
            done = apply_request(store, leg(request), now=NOW)
            after = store.active_images(VOAY_LNO)
            if kind == "EIM" and done.answer.leg.status == "ACK":
                assert done.answer.leg.imn
                imns.append(done.answer.leg.imn)
                assert len(after) == before + 1
            elif kind == "XIM" and done.answer.leg.status == "ACK":
                assert len(after) == before - 1
            else:
                assert len(after) == before
            per_type = Counter(i.imt for i in after)
            assert all(per_type[t] <= LIMITS[t] for t in per_type)
            assert len({i.sha256 for i in after}) == len(after)
            assert len({i.imn for i in after}) == len(after)
