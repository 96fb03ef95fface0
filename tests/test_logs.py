"""Logging follows the current stderr and never raises into the loop that logged."""

from __future__ import annotations

import io
import json
import sys

import pytest

from switch.logs import configure, get_logger


def test_logs_go_to_the_current_stderr_as_json_and_survive_a_closed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure("INFO", json=True)
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    log = get_logger("router")
    log.info("routed", cid="c1")
    assert json.loads(first.getvalue())["cid"] == "c1"
    first.close()
    log.info("after close")  # the old stream is gone: no ValueError
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    log.warning("again", mid="m1")
    line = json.loads(second.getvalue())
    assert line["mid"] == "m1" and line["component"] == "router" and line["level"] == "warning"
