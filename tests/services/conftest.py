from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.store import Store
from tests.services.helpers import RECORDS


@pytest.fixture
def leads(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "leads.sqlite3", "LEADS") as store:
        store.insert_records(RECORDS)
        yield store


@pytest.fixture
def ncic(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "ncic.sqlite3", "NCIC") as store:
        store.insert_records(RECORDS)  # keeps the SOR record only
        yield store
