"""Files generated from the contract: JSON Schema per public topic, and docs/FIELDS.md.

The schemas come from `msgspec.json.schema` on the message types of `messages.py`;
request fields are then enriched from the rules of `fields.py` (pattern, maxLength,
description, example), so the types themselves stay free of decode-time constraints.
The field table of docs/FIELDS.md is rendered from the same rules, and its reject texts
are produced by running `parse_request` on a bad value, so the docs cannot drift.

`python -m switch.contract.jsonschema [ROOT]` (or `switch schemas`) rewrites them; a test
fails when a committed file differs from what this module produces now.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from switch.contract.fields import FIELDS, FieldRule
from switch.contract.messages import AnyRequest, AuditEntry, Control, DeadLetter, Reply
from switch.contract.validate import (
    DEFAULT_MAX_BYTES,
    ContractError,
    RequestInvalid,
    Unreadable,
    parse_request,
)

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# File stem -> (type, the topic it describes).
SCHEMAS: dict[str, tuple[Any, str]] = {
    "request": (AnyRequest, "switch.requests"),
    "reply": (Reply, "switch.replies"),
    "dead-letter": (DeadLetter, "switch.dlq"),
    "audit-entry": (AuditEntry, "switch.audit"),
    "control": (Control, "switch.control"),
}
_REQUEST_DEFS = ("EnterImage", "ModifyImage", "CancelImage", "QueryImage")

# One valid request per key, on the wire; the docs derive their reject examples from them.
EXAMPLE_REQUESTS: dict[str, dict[str, str]] = {
    "EIM": {
        "mid": "doc-eim-1",
        "mke": "EIM",
        "ori": "IL0160000",
        "lno": "X17A4394",
        "imt": "M",
        "doi": "20230216",
        "mis": "ANNUAL PHOTO",
        "image": "/9j/4AAQSkZJRg==",
    },
    "MII": {
        "mid": "doc-mii-1",
        "mke": "MII",
        "ori": "IL0160000",
        "imn": "X17A4394M0",
        "mis": "RETAKEN",
    },
    "XIM": {
        "mid": "doc-xim-1",
        "mke": "XIM",
        "ori": "IL0160000",
        "imn": "X17A4394M0",
        "doc": "20240301",
    },
    "QIM": {
        "mid": "doc-qim-1",
        "mke": "QIM",
        "ori": "IL0160000",
        "nam": "SMITH, JOHN PAUL",
        "sex": "M",
        "dob": "19800101",
    },
}


# --------------------------------------------------------------------------- JSON Schema


def _enrich_property(prop: dict[str, Any], rule: FieldRule) -> None:
    prop["description"] = rule.rule
    prop["examples"] = [rule.example]
    branches = prop.get("anyOf", [prop])
    for branch in branches:
        if branch.get("type") != "string" or "contentEncoding" in branch:
            continue
        if rule.pattern is not None:
            branch["pattern"] = f"^(?:{rule.pattern})$"
        if rule.max_length is not None:
            branch["maxLength"] = rule.max_length


def schema_for(name: str) -> dict[str, Any]:
    """The JSON Schema of one public topic's messages."""
    tp, topic = SCHEMAS[name]
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": f"{topic} value",
        "description": f"A message on `{topic}` (CONTRACT.md, version 1); unknown fields are ignored.",
    }
    schema.update(copy.deepcopy(msgspec.json.schema(tp)))
    if name == "request":
        rules = {rule.code.lower(): rule for rule in FIELDS}
        for def_name in _REQUEST_DEFS:
            for field, prop in schema["$defs"][def_name]["properties"].items():
                rule = rules.get(field)
                if rule is not None:
                    _enrich_property(prop, rule)
    return schema


def render_schema(name: str) -> str:
    return json.dumps(schema_for(name), indent=2, sort_keys=False) + "\n"


def schema_files() -> dict[str, str]:
    """File name -> content, for every schema, and the AsyncAPI document built from them."""
    from switch.contract import asyncapi  # it builds on this module
    from switch.scenario.model import json_schema as scenario_schema

    files = {f"{name}.schema.json": render_schema(name) for name in SCHEMAS}
    files[asyncapi.FILE_NAME] = asyncapi.render()
    # Not a topic's: the format of `switch scenario` files, for editors that check TOML.
    files["scenario.schema.json"] = json.dumps(scenario_schema(), indent=2) + "\n"
    return files


def write_schemas(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in schema_files().items():
        path = out_dir / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(out_dir: Path) -> list[str]:
    """Names of schema files in `out_dir` that are missing or differ from the generator."""
    stale = []
    for file_name, text in schema_files().items():
        path = out_dir / file_name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(file_name)
    return stale


# --------------------------------------------------------------------------- docs/FIELDS.md


def reject_text(mke: str, field: str, value: Any) -> str:
    """The reject the switch gives the example `mke` request with `field` set to `value`."""
    wire: dict[str, Any] = dict(EXAMPLE_REQUESTS[mke])
    wire[field] = value
    return _first_reject(wire, field)


def _first_reject(wire: dict[str, Any], field: str) -> str:
    try:
        parse_request(msgspec.json.encode(wire))
    except RequestInvalid as exc:
        for error in exc.errors:
            if error.field == field:
                return f"`{error.code}` {error.text}"
        return f"`{exc.errors[0].code}` {exc.errors[0].text}"
    except ContractError as exc:  # pragma: no cover - examples are readable JSON
        return str(exc)
    return "(accepted)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _code_cell(text: str) -> str:
    return f"`{text}`" if text else "(empty)"


def fields_markdown() -> str:
    lines = [
        "# Request fields",
        "",
        "Generated by `switch schemas` from `switch/contract/fields.py`; the reject texts are",
        "what `parse_request` answers today. JSON names are the lower-case codes. Every",
        "problem of a request is reported at once, one `errors` entry each (`field`, `code`,",
        "`text`). A JSON `null` counts as an absent field; unknown fields are ignored.",
        "",
        "| code | rule | example | a bad value | its reject (`code`, `text`) |",
        "|---|---|---|---|---|",
    ]
    for rule in FIELDS:
        field = rule.code.lower()
        bad = reject_text(rule.mke, field, rule.bad)
        lines.append(
            f"| {rule.code} | {_cell(rule.rule)} | {_code_cell(rule.example)} "
            f"| {_code_cell(rule.bad)} | {_cell(bad)} |"
        )
    missing_eim = dict(EXAMPLE_REQUESTS["EIM"])
    del missing_eim["lno"]
    mii_none = {k: v for k, v in EXAMPLE_REQUESTS["MII"].items() if k != "mis"}
    qim_none = {k: v for k, v in EXAMPLE_REQUESTS["QIM"].items() if k not in ("nam", "sex", "dob")}
    qim_two = dict(EXAMPLE_REQUESTS["QIM"], lno="X17A4394")
    qim_part = {k: v for k, v in EXAMPLE_REQUESTS["QIM"].items() if k != "dob"}
    eim_future = dict(EXAMPLE_REQUESTS["EIM"], doi="29991231")
    cross = [
        ("a required field absent", missing_eim, "lno"),
        ("MII: at least one of IMAGE, DOI, MIS", mii_none, "image|doi|mis"),
        ("QIM: none of IMN, LNO, NIC, NAM/SEX/DOB", qim_none, "imn|lno|nic|nam+sex+dob"),
        ("QIM: more than one of them", qim_two, "imn|lno|nic|nam+sex+dob"),
        ("QIM: NAM, SEX, DOB go together", qim_part, "dob"),
        ("a date in the future (DOI, DOC, DOB)", eim_future, "doi"),
    ]
    lines += [
        "",
        "## Rules across fields",
        "",
        "| rule | `field` in the error | reject |",
        "|---|---|---|",
    ]
    for label, wire, field in cross:
        lines.append(f"| {label} | {_cell(_code_cell(field))} | {_cell(_first_reject(wire, field))} |")
    lines += [
        "",
        "The DOI is also checked against the record's DOB once the router has found the",
        "record (`check_doi_against_dob`): `INVALID DOI: 19700101 IS BEFORE DOB 19800101`.",
        "",
        "## Input that is not a request",
        "",
        "Goes to `switch.dlq` (`reason` below); a REJECTED reply follows when a valid `mid`",
        "and `ori` can still be read.",
        "",
        "| input | reason |",
        "|---|---|",
    ]
    unreadable: list[tuple[str, bytes]] = [
        ("over the size limit (2 MiB by default)", b" " * (DEFAULT_MAX_BYTES + 1)),
        ("not UTF-8", b'{"mid": "\xff"}'),
        ("not JSON", b"EIM.IL0160000.LNO/X17A4394."),
        ("JSON, but not an object", b'["EIM"]'),
    ]
    for label, raw in unreadable:
        try:
            parse_request(raw)
            reason = "(accepted)"  # pragma: no cover
        except Unreadable as exc:
            reason = exc.reason
        except ContractError as exc:  # pragma: no cover
            reason = str(exc)
        lines.append(f"| {label} | `{_cell(reason)}` |")
    lines += [
        "",
        "A request whose outputs cannot be written (a reply or leg request too large for its",
        "topic, a `reply_to` topic that is missing or not writable) also goes to `switch.dlq`,",
        "with `reason` `NOT DELIVERED TO <topic>: TOO LARGE (<n> BYTES)` (or `TOPIC DOES NOT",
        "EXIST`, `NOT AUTHORIZED`), and gets a REJECTED reply on the default replies topic.",
        "",
        "A dead letter's `key` (first 256 bytes) and `raw` (first 4 KiB) are bounded, and never",
        "hold image data: an image, whether a JSON string (closed or cut), raw JPEG/PNG bytes or",
        "any run of 64 or more base64 characters, is replaced by its size and SHA-256, e.g.",
        '`"image":"<4188 bytes base64, sha256 ab12...>"`. `key_bytes` and `raw_bytes` give the',
        "sizes as received. A reject's echo of the input is redacted the same way.",
        "",
        "NIC check digit: Luhn (mod 10) over the 8 digits after the letter, "
        '`make_nic("X", "12345678") == "X123456782"`.',
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path.cwd()
    for path in write_schemas(root / "schemas"):
        print(path)
    docs = root / "docs" / "FIELDS.md"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(fields_markdown(), encoding="utf-8")
    print(docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
