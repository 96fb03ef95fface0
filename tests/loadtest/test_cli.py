"""`switch gen`, `switch replay`, `switch capture` on the command line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pytest

from switch.cli.main import main
from switch.contract.internal import RecordEntry
from switch.loadtest.traffic import Header, Step, Traffic, read_traffic, write_traffic
from switch.settings import Settings


def _records_file(records: list[RecordEntry], path: Path) -> Path:
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in records))
    return path


def test_gen_writes_a_readable_deterministic_file(
    records: list[RecordEntry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _records_file(records, tmp_path / "records.jsonl")
    args = ["gen", "--records", str(src), "--count", "80", "--seed", "4", "--image-kb", "3:1",
            "--mix", "QIM=2,EIM=1,MII=1"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    traffic = read_traffic(tmp_path / "a.jsonl")
    assert len(traffic.steps) == 80 and traffic.header.params["mix"]["XIM"] == 0.0
    assert "switch gen: 80 requests" in capsys.readouterr().err


def test_gen_uses_the_home_records_by_default(
    records: list[RecordEntry], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _records_file(records, home / "records.jsonl")
    assert main(["gen", "--home", str(home), "--count", "5", "--image-kb", "3:0",
                 "--out", str(tmp_path / "t.jsonl")]) == 0
    assert main(["gen", "--home", str(tmp_path), "--count", "5", "--out", str(tmp_path / "u.jsonl")]) == 2
    assert "cannot read records" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--mix", "EIM=1,ABC=1"], "--mix"),
    (["--invalid-rate", "1.5"], "--invalid-rate"),
    (["--image-kb", "x"], "--image-kb"),
])
def test_gen_refuses_bad_options(records: list[RecordEntry], tmp_path: Path, extra: list[str],
                                 message: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = _records_file(records, tmp_path / "records.jsonl")
    rc = main(["gen", "--records", str(src), "--count", "5", "--out", str(tmp_path / "t"), *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("switch gen: error:") and message in err


def test_replay_refuses_bad_input_before_connecting(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--rate", "5"]) == 2
    assert "cannot read traffic file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"step","id":"a","request":{}}\n')
    assert main(["replay", str(bad), "--rate", "5"]) == 2
    assert "the first line must be the header" in capsys.readouterr().err
    assert main(["replay", str(bad)]) == 2
    assert "--rate" in capsys.readouterr().err


@pytest.mark.kafka
async def test_replay_exits_1_and_names_missing_replies(
    kafka_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Topics exist but no switch runs: nothing answers."""
    s = kafka_settings
    steps = [Step(id=f"s{i}", request={"mke": "QIM", "mid": f"lonely-{i}", "ori": "IL0160000",
                                       "lno": "X17A4394"}) for i in range(3)]
    path = tmp_path / "t.jsonl"
    write_traffic(path, Traffic(header=Header(), steps=steps))
    rc = await asyncio.to_thread(main, [
        "replay", str(path), "--rate", "20", "--grace", "1", "--json", "--quiet",
        "--home", str(s.home), "--bootstrap-servers", s.kafka.bootstrap_servers,
        "--topic-prefix", s.topics.prefix,
    ])
    assert rc == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["missing"] == 3 and summary["replies"] == 0
    assert all(m.startswith("lonely-") for m in summary["missing_mids"])
