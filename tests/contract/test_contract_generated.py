"""Generated files are up to date: schemas/*.schema.json and docs/FIELDS.md."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from switch.cli import schemas as schemas_cli
from switch.contract import fields as F
from switch.contract.jsonschema import (
    EXAMPLE_REQUESTS,
    SCHEMAS,
    fields_markdown,
    schema_files,
    schema_for,
    stale_schemas,
)
from switch.contract.validate import parse_request

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "regenerate with `switch schemas --fields docs/FIELDS.md` at the repository root"


@pytest.mark.parametrize("file_name", sorted(schema_files()))
def test_committed_schema_is_current(file_name: str) -> None:
    path = ROOT / "schemas" / file_name
    assert path.is_file(), f"{path} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == schema_files()[file_name], (
        f"{path} is out of date; {REGENERATE}"
    )


def test_fields_doc_is_current() -> None:
    path = ROOT / "docs" / "FIELDS.md"
    assert path.read_text(encoding="utf-8") == fields_markdown(), f"{path}: {REGENERATE}"


def test_every_public_topic_has_a_schema() -> None:
    assert set(SCHEMAS) == {"request", "reply", "dead-letter", "audit-entry", "control"}
    for name in SCHEMAS:
        schema = schema_for(name)
        assert schema["$schema"].startswith("https://json-schema.org/")
        json.dumps(schema)


def test_request_schema_patterns_agree_with_the_rules() -> None:
    defs = schema_for("request")["$defs"]
    eim = defs["EnterImage"]["properties"]
    assert eim["lno"]["pattern"] == f"^(?:{F.LNO_PATTERN})$"
    assert eim["mis"]["anyOf"][0]["maxLength"] == 200
    assert "pattern" not in eim["image"]
    for mke, example in EXAMPLE_REQUESTS.items():
        parse_request(json.dumps(example).encode())  # the examples are valid
        props = defs[{"EIM": "EnterImage", "MII": "ModifyImage", "XIM": "CancelImage",
                      "QIM": "QueryImage"}[mke]]["properties"]  # fmt: skip
        for field, value in example.items():
            prop = props[field]
            for branch in prop.get("anyOf", [prop]):
                if "pattern" in branch:
                    assert re.fullmatch(branch["pattern"][1:-1], value), (mke, field)


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    schemas_cli.register(sub, argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["schemas", *argv])
    status: int = args.func(args)
    return status


def test_cli_writes_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert run_cli("--check", "--out", str(out)) == 1
    assert run_cli("--out", str(out), "--fields", str(tmp_path / "FIELDS.md")) == 0
    assert stale_schemas(out) == []
    assert (tmp_path / "FIELDS.md").read_text(encoding="utf-8") == fields_markdown()
    assert run_cli("--check", "--out", str(out)) == 0
    (out / "reply.schema.json").write_text("{}", encoding="utf-8")
    assert run_cli("--check", "--out", str(out)) == 1
