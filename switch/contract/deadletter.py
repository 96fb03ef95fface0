"""Bounded dead letters: whatever arrives, the letter fits far below any size limit.

A dead letter copies the input's key and the start of its value for operators to read.
Copied whole, a 400 KB key made a letter larger than the producer may send, and the
stage that wrote it failed on the same record for ever; copied as is, a photo's EXIF
(GPS included) landed in the dead-letter topic. So both are cut and redacted
(switch/contract/redact.py), and the sizes as received are stated beside them.
"""

from __future__ import annotations

from switch.contract.messages import DeadLetter
from switch.contract.redact import redact

RAW_BYTES = 4096
KEY_BYTES = 256
REASON_CHARS = 300


def bounded_key(key: bytes | None) -> bytes | None:
    """The key a dead letter (or a fallback record) is written under."""
    return None if key is None else redact(key, KEY_BYTES)


def dead_letter(
    reason: str, *, topic: str, partition: int, offset: int, key: bytes | None,
    value: bytes | None, ts: str,
) -> DeadLetter:
    """A letter of at most ~8 KiB encoded, with no image data in it."""
    cut = bounded_key(key)
    return DeadLetter(
        reason=reason[:REASON_CHARS], topic=topic, partition=partition, offset=offset,
        key=cut.decode("utf-8", "replace") if cut is not None else None,
        raw=redact(value or b"", RAW_BYTES), ts=ts,
        key_bytes=len(key) if key is not None else None, raw_bytes=len(value or b""),
    )
