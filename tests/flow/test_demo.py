"""The README's first command: `switch demo` walks the bulletin and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_demo_walks_the_bulletin_and_cleans_up(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SWITCH_"))}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "switch.cli.main", "demo", "--no-color"],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "all 13 steps had the expected outcome" in out
    # Both records walked, the VOAY one without NCIC, and the supplement after NCIC returned.
    assert "NCIC  SKIPPED - VOAY/MURDERER RECORD IS LEADS ONLY" in out
    assert "< PENDING" in out and "< supplement:" in out
    assert out.count("UNEXPECTED") == 0
    # It cleaned up: the temporary home is gone and its broker with it.
    assert not any(p.name.startswith("switch-demo-") for p in tmp_path.iterdir())
