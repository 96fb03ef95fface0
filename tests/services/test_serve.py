"""What a service does with one leg request (`serve_leg`), without Kafka: dropped past its
deadline, refused while down, a simulated reject, applied, or refused on a store failure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.controls import Controls
from services.rules import Answer, DeadlinePassed, serve_leg
from services.store import Store, StoreFull
from switch.contract.messages import Codes, Control, EnterImage, Latency, QueryImage
from tests.services.helpers import OWNER, SOR_LNO, jpeg, leg, mid

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def eim() -> EnterImage:
    return EnterImage(mid=mid(), ori=OWNER, lno=SOR_LNO, imt="M", doi="20230216", image=jpeg(3))


def qim() -> QueryImage:
    return QueryImage(mid=mid(), ori=OWNER, lno=SOR_LNO)


def controls(**kw: Any) -> Controls:
    c = Controls("LEADS", seed=1)
    c.apply(Control(system="LEADS", **kw))
    return c


def answered(outcome: DeadlinePassed | Answer) -> Answer:
    assert isinstance(outcome, Answer)
    return outcome


def test_a_query_past_its_deadline_is_dropped_but_an_entry_is_applied(leads: Store) -> None:
    assert serve_leg(leads, leg(qim()), controls(), late_s=2.5, now=NOW) == DeadlinePassed(2.5)
    entry = answered(serve_leg(leads, leg(eim()), controls(), late_s=2.5, now=NOW))
    assert entry.applied.answer.leg.status == "ACK"
    assert len(leads.active_images(SOR_LNO)) == 1


def test_a_system_down_answers_unavailable_at_once_without_applying(leads: Store) -> None:
    c = controls(mode="down_drop", latency_ms=Latency(p50=50, p99=500))
    out = answered(serve_leg(leads, leg(eim()), c, late_s=None, now=NOW))
    assert (out.applied.answer.leg.status, out.applied.answer.leg.code) == (
        "UNAVAILABLE", Codes.SYSTEM_UNAVAILABLE)
    assert out.delay_s == 0.0
    assert leads.active_images(SOR_LNO) == []


def test_a_simulated_reject_waits_its_latency_and_applies_nothing(leads: Store) -> None:
    c = controls(reject_rate=1.0, latency_ms=Latency(p50=50, p99=500))
    out = answered(serve_leg(leads, leg(eim()), c, late_s=None, now=NOW))
    assert (out.applied.answer.leg.status, out.applied.answer.leg.code) == (
        "REJECT", Codes.SIMULATED_REJECT)
    assert out.delay_s > 0
    assert leads.active_images(SOR_LNO) == []


def test_a_redelivery_gets_its_stored_answer_without_the_latency(leads: Store) -> None:
    c = controls(latency_ms=Latency(p50=50, p99=500))
    request = leg(eim())
    first = answered(serve_leg(leads, request, c, late_s=None, now=NOW))
    again = answered(serve_leg(leads, request, c, late_s=None, now=NOW))
    assert first.delay_s > 0 and not first.applied.redelivered
    assert again.delay_s == 0.0 and again.applied.redelivered
    assert again.applied.encoded == first.applied.encoded


class _Broken(Store):
    def __init__(self, path: Path, exc: Exception) -> None:
        super().__init__(path, "LEADS")
        self.exc = exc

    def record_applied(self, cid: str, answer: bytes, when: float) -> None:
        raise self.exc


def test_a_store_failure_is_refused_but_a_full_store_rolls_the_batch_back(tmp_path: Path) -> None:
    with _Broken(tmp_path / "a.sqlite3", OSError("disk I/O error")) as store:
        out = answered(serve_leg(store, leg(eim()), controls(mode="down_drop"), late_s=None,
                                 now=NOW))
        assert isinstance(out.failed, OSError)
        assert out.applied.answer.leg.text == "LEADS UNAVAILABLE - INTERNAL ERROR, NOT APPLIED"
    full = StoreFull(tmp_path / "b.sqlite3", OSError("database or disk is full"))
    with _Broken(tmp_path / "b.sqlite3", full) as store, pytest.raises(StoreFull):
        serve_leg(store, leg(eim()), controls(mode="down_drop"), late_s=None, now=NOW)
