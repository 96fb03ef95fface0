"""The load tester's fixtures: the whole switch of the flow tests, and small records."""

from __future__ import annotations

import pytest

from services.population import generate
from switch.contract.internal import RecordEntry
from tests.flow.conftest import RunningSwitch, switch  # noqa: F401 - the fixture, shared

__all__ = ["RunningSwitch"]


@pytest.fixture(scope="session")
def records() -> list[RecordEntry]:
    return generate(120, 11)
