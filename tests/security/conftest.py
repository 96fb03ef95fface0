"""Security tests run on the secured local broker (the session's default)."""

from __future__ import annotations

import dataclasses

import pytest

from switch.security.agencies import add_agency
from switch.settings import Settings
from tests.flow.conftest import switch  # noqa: F401 - the running switch fixture, reused


def need_secure(settings: Settings) -> None:
    if not settings.secure or settings.kafka.security_dir is None:
        pytest.skip("needs the secured local broker (SWITCH_INSECURE is set, or an external broker)")


async def agency(settings: Settings, name: str, oris: list[str]) -> Settings:
    """Add agency `name` and return settings acting as it (same home, prefix and broker)."""
    need_secure(settings)
    await add_agency(settings, name, oris)
    return dataclasses.replace(settings, agency=name,
                               kafka=settings.kafka.as_principal(f"agency-{name}"))
