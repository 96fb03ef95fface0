"""`switch up` exactly as the README runs it, on the real broker: four child processes, the
web console on the address the ready line prints, a request answered, Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from switch.client import SwitchClient, new_mid
from switch.settings import Settings

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _start(args: list[str], env: dict[str, str], err: Path) -> subprocess.Popen[bytes]:
    with open(err, "wb") as f:
        return subprocess.Popen([sys.executable, "-m", "switch.cli.main", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=f)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def test_switch_up_runs_four_processes_and_serves_the_web_console(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    s = kafka_settings
    env = dict(os.environ, SWITCH_HOME=str(s.home), KAFKA_BOOTSTRAP_SERVERS=s.kafka.bootstrap_servers,
               SWITCH_TOPIC_PREFIX=s.topics.prefix)
    err = tmp_path / "up.err"
    proc = _start(["up", "--seed-count", "30", "--web-port", "0"], env, err)
    try:
        deadline = time.monotonic() + 150
        ready = None
        while ready is None and time.monotonic() < deadline and proc.poll() is None:
            ready = next((line for line in err.read_text(errors="replace").splitlines()
                          if line.startswith("switch up: ready")), None)
            await asyncio.sleep(0.3)
        assert ready, err.read_text(errors="replace")[-3000:]
        kids = _children(proc.pid)
        assert len(kids) == 4, kids  # LEADS, NCIC, a correlator, a router
        url = re.search(r"web console on (http://127\.0\.0\.1:\d+/)", ready)
        assert url, ready
        page = await asyncio.to_thread(lambda: urllib.request.urlopen(url.group(1), timeout=10).read())
        assert b"switch-sim console" in page

        records = (s.home / "records.jsonl").read_text().splitlines()
        rec = json.loads(records[0])
        async with SwitchClient(s) as client:
            reply = await client.request({"mke": "QIM", "mid": new_mid("up"), "ori": rec["ori"],
                                          "lno": rec["lno"]}, timeout=60)
        assert reply.status == "COMPLETE", reply.text

        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0
        assert not any(_alive(k) for k in kids)  # the children stopped too
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
