"""A correlator step that sends nothing (a manifest, the first of two answers) is not
committed on its own: its input offsets ride with the next step that replies, or go after
DEFER_MAX_S. Pure logic: the steps are built here and never sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from switch.correlator import loop
from switch.correlator.loop import Correlator
from switch.kafka.txloop import Step
from switch.settings import Settings

R0 = TopicPartition("t.responses", 0)
R1 = TopicPartition("t.responses", 1)


@pytest.fixture
def correlator(tmp_path: Path) -> Iterator[Correlator]:
    settings = Settings.from_env({"SWITCH_INSECURE": "1"}, home=tmp_path,
                                 bootstrap_servers="127.0.0.1:1", topic_prefix="t")
    c = Correlator(settings)
    yield c
    c.store.close()


def _step(offsets: dict[TopicPartition, int]) -> Step:
    step = Step()
    step.offsets = dict(offsets)
    return step


def test_a_silent_step_waits_and_the_next_reply_commits_its_offsets(correlator: Correlator) -> None:
    assert correlator._defer(_step({R0: 5}), [], sweep_due=False)  # a manifest: nothing sent
    assert correlator._defer(_step({R0: 6, R1: 3}), [], sweep_due=False)  # a first answer
    replying = _step({R1: 4})
    emit: Any = object()  # the fold does not look at the emits, only that there are some
    assert not correlator._defer(replying, [emit], sweep_due=False)
    assert replying.offsets == {R0: 6, R1: 4}  # both partitions, the highest of each
    assert not correlator._deferred
    # Nothing deferred and nothing read: nothing to commit at all.
    assert correlator._defer(_step({}), [], sweep_due=False)


def test_a_silent_step_commits_after_the_longest_wait(correlator: Correlator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(loop.time, "monotonic", lambda: now[0])
    assert correlator._defer(_step({R0: 5}), [], sweep_due=False)
    now[0] += loop.DEFER_MAX_S / 2
    assert correlator._defer(_step({}), [], sweep_due=False)  # an empty tick: still young
    now[0] += loop.DEFER_MAX_S
    late = _step({})
    assert not correlator._defer(late, [], sweep_due=False)
    assert late.offsets == {R0: 5}


def test_a_sweep_or_a_changed_table_is_never_deferred(correlator: Correlator) -> None:
    assert correlator._defer(_step({R0: 5}), [], sweep_due=False)
    sweeping = _step({})
    assert not correlator._defer(sweeping, [], sweep_due=True)
    assert sweeping.offsets == {R0: 5}


def test_partitions_taken_away_drop_their_deferred_offsets(correlator: Correlator) -> None:
    assert correlator._defer(_step({R0: 5, R1: 9}), [], sweep_due=False)
    correlator.forget_deferred({0})
    replying = _step({})
    assert not correlator._defer(replying, [object()], sweep_due=False)  # type: ignore[list-item]
    assert replying.offsets == {R1: 9}  # the new owner of 0 reads its inputs again
