"""What the correlator exports after a step (pure: no broker): replies by kind, leg
latency of first replies only, and the pending table's counters without what a restore's
silent replay counted."""

from __future__ import annotations

from pathlib import Path

from switch.contract.messages import Leg, Reply
from switch.correlator.loop import Correlator
from switch.correlator.pending import Emit
from switch.settings import Settings


def _reply(**kw: object) -> Emit:
    r = Reply(mid="m", cid="c", mke="EIM", ori="CA0000000", status="COMPLETE",
              legs={"LEADS": Leg(status="ACK", ms=12.0), "NCIC": Leg(status="SKIPPED")}, **kw)  # type: ignore[arg-type]
    return Emit(r, None, "c")


def test_replies_by_kind_and_leg_latency_of_first_replies(tmp_path: Path) -> None:
    c = Correlator(Settings.from_env({}, home=tmp_path))
    c._export([_reply(), _reply(supplement=True), _reply(duplicate=True)])
    value = c.metrics.registry.get_sample_value
    for kind in ("first", "supplement", "duplicate"):
        assert value("switch_replies_total", {"mke": "EIM", "status": "COMPLETE", "kind": kind}) == 1
    assert value("switch_leg_latency_seconds_count", {"system": "LEADS"}) == 1
    assert value("switch_leg_latency_seconds_sum", {"system": "LEADS"}) == 0.012
    assert value("switch_leg_latency_seconds_count", {"system": "NCIC"}) is None  # no ms: skipped
    assert value("switch_pending_transactions", {}) == 0
    c.store.close()


def test_a_restores_replay_is_not_counted_again(tmp_path: Path) -> None:
    c = Correlator(Settings.from_env({}, home=tmp_path))
    value = c.metrics.registry.get_sample_value
    c.table.counters.late += 2
    c._export([])
    assert value("switch_late_answers_total", {}) == 2
    c.table.counters.late += 5  # replayed silently by a restore ...
    c.table.counters.orphans += 1
    c._sync_counters(export=False)  # ... which restore() ends with
    c.table.counters.late += 1
    c._export([])
    assert value("switch_late_answers_total", {}) == 3
    assert value("switch_orphan_answers_total", {}) == 0
    c.store.close()
