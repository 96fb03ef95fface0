"""What a service does while its store's disk is full (pure, no Kafka).

When a batch cannot be stored (`StoreFull`: SQLite's SQLITE_FULL, the whole batch rolled
back), nothing of it is answered and no offset is committed: the loop redelivers the
batch to itself, and retries it after a growing pause (RETRY_S) until it is stored. The
requests wait in the topic meanwhile; the correlator answers each one at its deadline
as for a system that does not answer (entries QUEUED, queries TIMEOUT), and an entry's
supplement follows once the service has stored it: every request still gets exactly
one reply, and no ACK names anything that is not on disk.

This guard says so ONCE when the store fills up (an error line naming the file, what is
full and what to do), stays quiet while it retries, and says once that it resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.store import StoreFull

RETRY_S = (0.5, 1.0, 2.0, 5.0)  # pause before each retry of the batch; the last repeats
NORMAL_PAUSE_S = 0.5  # before a redelivery for any other reason


class FullStoreGuard:
    def __init__(
        self,
        system: str,
        path: Path,
        log: Any,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.path = path
        self.log = log
        self._mono = monotonic
        self.full_since: float | None = None
        self.retries = 0
        self.episodes = 0  # how many times the store filled up

    @property
    def active(self) -> bool:
        return self.full_since is not None

    @property
    def pause_s(self) -> float:
        """How long the loop waits before it redelivers (and so retries) a batch."""
        if self.full_since is None:
            return NORMAL_PAUSE_S
        return RETRY_S[min(self.retries, len(RETRY_S)) - 1] if self.retries else RETRY_S[0]

    def failed(self, exc: StoreFull) -> None:
        """A batch could not be stored because the store is full."""
        if self.full_since is None:
            self.full_since = self._mono()
            self.retries = 0
            self.episodes += 1
            self.log.error(
                f"{self.system} store is full: cannot write {exc.path} ({exc.cause}). "
                f"Taking no requests: they wait in the topic and none is answered until it "
                f"is stored. Free space on the filesystem of {exc.path.parent} (or raise its "
                f"quota); the service retries every {RETRY_S[-1]:g} s at most and resumes by itself.",
                store=str(exc.path),
                error=str(exc.cause),
            )
        self.retries += 1

    def stored(self, wrote: bool = True) -> None:
        """A batch was committed. If it wrote something and the store was full, the store
        has room again (a batch of queries only writes nothing: it proves no room)."""
        if self.full_since is None or not wrote:
            return
        self.log.warning(
            f"{self.system} store has room again: resumed taking requests",
            store=str(self.path),
            full_for_s=round(self._mono() - self.full_since, 1),
            retries=self.retries,
        )
        self.full_since = None
        self.retries = 0
