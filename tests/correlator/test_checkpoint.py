"""The changelog's checkpoint carries the responses offset committed with it, so a restore
never resumes before it (the group coordinator can answer an older offset after a broker
restart). Checkpoints written before the field existed still read."""

from __future__ import annotations

from pathlib import Path

import msgspec

from switch.contract.internal import CHECKPOINT_KEY, Checkpoint
from switch.correlator.store import ReplyStore


def test_checkpoint_keeps_the_committed_offset(tmp_path: Path) -> None:
    store = ReplyStore(tmp_path / "r.sqlite3")
    try:
        store.apply([(0, CHECKPOINT_KEY, msgspec.json.encode(Checkpoint(offset=40, committed=55)))])
        store.apply([(1, CHECKPOINT_KEY, b'{"kind":"checkpoint","offset":7}')])  # an old record
        assert (store.checkpoint(0), store.committed(0)) == (40, 55)
        assert (store.checkpoint(1), store.committed(1)) == (7, None)
        store.apply([(0, CHECKPOINT_KEY, msgspec.json.encode(Checkpoint(offset=60, committed=60)))])
        assert store.committed(0) == 60
        store.forget_partition(0)
        assert store.committed(0) is None
    finally:
        store.close()
