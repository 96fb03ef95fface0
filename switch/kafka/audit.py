"""Audit entries (CONTRACT.md, CJIS): built here, sent to `<prefix>.audit` keyed by cid.

Never holds image bytes: only the image's SHA-256.
"""

from __future__ import annotations

from typing import Any

from switch.contract.messages import AuditEntry, encode
from switch.contract.replies import now_rfc3339


def audit_entry(component: str, event: str, **fields: Any) -> AuditEntry:
    return AuditEntry(ts=now_rfc3339(), component=component, event=event, **fields)


def audit_record(entry: AuditEntry) -> tuple[bytes | None, bytes]:
    """(key, value) for the audit topic."""
    key = entry.cid.encode() if entry.cid else None
    return key, encode(entry)
