"""Shared IMN allocation (pure, no Kafka): `I` + the requests partition (one digit) + that
partition's sequence number (8 digits).

A sequence counts allocated IMNs only, not offsets, so it does not wrap with the topic.
Its state is two kinds of record on the compacted `<prefix>.imns` topic:
- `ImnSequence` (key: the partition), the next number, written by the router in the same
  Kafka transaction as the leg requests carrying the numbers below it. An aborted batch
  therefore leaves the sequence where it was (its numbers are allocated again when it is
  routed again), and a committed one moves it on for good.
- `ImnFloor` (key `floor`), published by LEADS at start-up from its store: the highest
  number on file per partition digit. The next number is never at or below it, so topics
  recreated over existing stores cannot restart the numbering.

A partition whose sequence reaches 10^8 has no number left: `take` returns None and the
EIM is refused (never a number used again).
"""

from __future__ import annotations

import msgspec

from switch.contract import fields as F
from switch.contract.internal import (
    ImnSequence,
    ImnState,
    imn_state_decoder,
)

SEQUENCE_LIMIT = 10**8  # 8 digits


def shared_imn(partition: int, sequence: int) -> str:
    if not 0 <= partition <= 9:
        raise ValueError(f"partition {partition}: the shared IMN has one digit for it")
    if not 0 <= sequence < SEQUENCE_LIMIT:
        raise ValueError(f"sequence {sequence}: 8 digits at most")
    return f"{F.SHARED_IMN_PREFIX}{partition}{sequence:08d}"


def sequence_key(partition: int) -> str:
    return str(partition)


class ImnSequences:
    """The router's view of the imns topic: next number per partition, and the floor."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self._floor: dict[int, int] = {}
        self.floor_seen = False

    def apply(self, state: ImnState) -> None:
        """Fold one record of the imns topic in (any order: the highest value wins)."""
        if isinstance(state, ImnSequence):
            self._next[state.partition] = max(self._next.get(state.partition, 0), state.next)
        else:
            self.floor_seen = True
            for digit, highest in state.highest.items():
                self._floor[digit] = max(self._floor.get(digit, -1), highest)

    def apply_raw(self, value: bytes) -> bool:
        """`apply` a record's value; False (and nothing changed) if it is unreadable."""
        try:
            self.apply(imn_state_decoder.decode(value))
        except msgspec.DecodeError:
            return False
        return True

    def next_for(self, partition: int) -> int:
        return max(self._next.get(partition, 0), self._floor.get(partition, -1) + 1)

    def batch(self) -> ImnBatch:
        return ImnBatch(self)

    def _advance(self, partition: int, nxt: int) -> None:
        self._next[partition] = max(self._next.get(partition, 0), nxt)


class ImnBatch:
    """The numbers taken by one Kafka transaction. `records()` are written in it;
    `commit()` only once it has committed (an aborted batch leaves no trace)."""

    def __init__(self, sequences: ImnSequences) -> None:
        self._seq = sequences
        self._next: dict[int, int] = {}

    def take(self, partition: int) -> str | None:
        """The next shared IMN of `partition`, or None when its 10^8 numbers are used."""
        n = self._next.get(partition, self._seq.next_for(partition))
        if n >= SEQUENCE_LIMIT:
            return None
        self._next[partition] = n + 1
        return shared_imn(partition, n)

    def records(self) -> list[tuple[str, ImnSequence]]:
        return [(sequence_key(p), ImnSequence(partition=p, next=n))
                for p, n in sorted(self._next.items())]

    def commit(self) -> None:
        for p, n in self._next.items():
            self._seq._advance(p, n)
        self._next = {}
