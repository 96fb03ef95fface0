"""The AsyncAPI document of the public topics: generated from the contract, committed,
and valid for the reference parser (@asyncapi/parser, installed by `make install`)."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from switch.contract import asyncapi
from switch.contract.jsonschema import SCHEMAS, schema_for

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / asyncapi.FILE_NAME
TOOL = ROOT / "tools" / "asyncapi"


def _validate(doc: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is needed to validate the AsyncAPI document (Node is on the CI machine)"
    assert (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "the AsyncAPI parser is not installed: run `make install` (npm ci in tools/asyncapi)")
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(doc))
    return subprocess.run([node, str(TOOL / "validate.mjs"), str(path)], capture_output=True,
                          text=True, timeout=120, check=False)


def test_committed_document_is_what_the_contract_generates() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == asyncapi.render(), (
        "schemas/asyncapi.json is stale: run `switch schemas`")


def test_reference_parser_accepts_it(tmp_path: Path) -> None:
    done = _validate(json.loads(COMMITTED.read_text()), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid AsyncAPI 3.0.0, 5 channels, 5 operations, 5 messages" in done.stdout


@pytest.mark.parametrize("damage", ["action", "ref"])
def test_reference_parser_refuses_a_broken_document(tmp_path: Path, damage: str) -> None:
    # The check above could not fail if the validator accepted anything.
    doc = copy.deepcopy(asyncapi.document())
    if damage == "action":
        doc["operations"]["sendReply"]["action"] = "emit"
    else:
        doc["components"]["messages"]["Reply"]["payload"]["$ref"] = "#/components/schemas/Nope"
    done = _validate(doc, tmp_path)
    assert done.returncode == 1, done.stdout
    assert "INVALID" in done.stdout


def test_every_public_topic_is_a_channel_with_the_json_schema_of_its_messages() -> None:
    doc = asyncapi.document()
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {topic for _, topic in SCHEMAS.values()}
    schemas = doc["components"]["schemas"]
    reply_def = schema_for("reply")["$defs"]["Reply"]
    assert set(schemas["Reply"]["properties"]) == set(reply_def["properties"])
    # The request's field rules (patterns, examples) come along.
    assert schemas["EnterImage"]["properties"]["lno"]["pattern"] == (
        schema_for("request")["$defs"]["EnterImage"]["properties"]["lno"]["pattern"])
    assert "$defs" not in json.dumps(doc)


def test_correlation_and_reply_address_are_described() -> None:
    doc = asyncapi.document()
    msgs = doc["components"]["messages"]
    assert msgs["Request"]["correlationId"]["location"] == "$message.payload#/mid"
    assert msgs["Reply"]["correlationId"]["location"] == "$message.payload#/mid"
    reply = doc["operations"]["receiveRequest"]["reply"]
    assert reply["address"]["location"] == "$message.payload#/reply_to"
    assert reply["channel"] == {"$ref": "#/channels/replies"}


def test_a_topic_prefix_renames_every_channel() -> None:
    doc = asyncapi.document("acme")
    assert {c["address"] for c in doc["channels"].values()} == {
        "acme" + t.removeprefix("switch") for _, t in SCHEMAS.values()}
