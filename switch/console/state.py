"""What a console remembers between replies, bounded so it can run for days.

`FirstSeen` links a supplement to the reply it completes: an LRU of cid -> (mid,
first status) holding at most `capacity` transactions. A supplement normally follows
its first reply within minutes (when a system returns), so the most recent tens of
thousands of transactions are plenty; an older one is reported as "first reply not
seen" rather than kept forever. `Counts` is a fixed set of integers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from switch.console.filters import STATUSES
from switch.contract.messages import Reply

DEFAULT_CAPACITY = 50_000


@dataclass(frozen=True, slots=True)
class First:
    """The first (non-supplement) reply seen for a transaction."""

    mid: str | None
    status: str


class FirstSeen:
    """Bounded LRU: cid -> the first reply's mid and status."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: OrderedDict[str, First] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, cid: object) -> bool:
        return cid in self._items

    def observe(self, reply: Reply) -> First | None:
        """Remember a first reply; for a supplement, return the first reply it completes.

        A supplement returns None when the first reply was never seen (the console
        started later) or has been forgotten. A supplement also refreshes its entry,
        since a second supplement may follow for the other system.
        """
        items = self._items
        if reply.supplement:
            first = items.get(reply.cid)
            if first is not None:
                items.move_to_end(reply.cid)
            return first
        if reply.cid not in items:
            items[reply.cid] = First(mid=reply.mid, status=reply.status)
            if len(items) > self.capacity:
                items.popitem(last=False)
        else:
            items.move_to_end(reply.cid)  # a duplicate answer: keep the original status
        return None


@dataclass(slots=True)
class Counts:
    """Running totals of a console session; a fixed set of fields."""

    read: int = 0
    shown: int = 0
    unreadable: int = 0
    supplements: int = 0
    duplicates: int = 0
    images_saved: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def count_shown(self, reply: Reply) -> None:
        self.shown += 1
        if reply.status in self.by_status:  # the decoder admits only the four statuses
            self.by_status[reply.status] += 1
        if reply.supplement:
            self.supplements += 1
        if reply.duplicate:
            self.duplicates += 1
