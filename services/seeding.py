"""Writing a synthetic population into both systems' stores (`switch seed`, and `switch up`
on empty stores). LEADS gets every record, NCIC the SOR ones; both agree by construction.
Each record goes to the store of its LNO's leg partition (services/stores.py).
Harmless to repeat: records already on file are left alone.
"""

from __future__ import annotations

from services.population import generate
from services.stores import SystemStores
from switch.contract.internal import RecordEntry
from switch.settings import Settings

SYSTEMS = ("LEADS", "NCIC")


def seed_stores(
    settings: Settings, count: int, seed: int, sor_share: float = 0.85
) -> list[RecordEntry]:
    """Generate `count` records from `seed` and insert them into the LEADS and NCIC stores."""
    entries = generate(count, seed, sor_share=sor_share)
    for system in SYSTEMS:
        with SystemStores(settings, system) as stores:
            stores.insert_records(entries)  # NCIC's stores keep the SOR records only
    return entries


def stores_empty(settings: Settings) -> bool:
    """True when neither system holds a record (missing stores count as empty)."""
    for system in SYSTEMS:
        with SystemStores(settings, system) as stores:
            if stores.record_count():
                return False
    return True
