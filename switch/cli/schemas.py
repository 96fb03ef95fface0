"""`switch schemas`: write the JSON Schema of every public topic's messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "schemas",
        parents=[common],
        help="write the JSON Schema files and the AsyncAPI document of the public topics",
        description=(
            "Write <name>.schema.json for the values of switch.requests (request), "
            "switch.replies (reply), switch.dlq (dead-letter), switch.audit (audit-entry) "
            "and switch.control (control), generated from the contract's message types "
            "and field rules, and asyncapi.json: the AsyncAPI 3.0 document of those topics "
            "(channels, messages, the mid/reply_to correlation) built from the same schemas. "
            "Needs no broker; KAFKA_BOOTSTRAP_SERVERS is not used."
        ),
    )
    p.add_argument(
        "--out", metavar="DIR", default="schemas", help="directory to write to (default: ./schemas)"
    )
    p.add_argument(
        "--fields",
        metavar="FILE",
        help="also write the field reference table (markdown, e.g. docs/FIELDS.md) here",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file in --out is missing or out of date",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.contract.jsonschema import fields_markdown, stale_schemas, write_schemas

    out = Path(args.out)
    if args.check:
        stale = stale_schemas(out)
        for name in stale:
            print(f"switch schemas: {out / name} is missing or out of date", file=sys.stderr)
        return 1 if stale else 0
    try:
        for path in write_schemas(out):
            print(path)
        if args.fields:
            fields = Path(args.fields)
            fields.parent.mkdir(parents=True, exist_ok=True)
            fields.write_text(fields_markdown(), encoding="utf-8")
            print(fields)
    except OSError as exc:
        print(f"switch schemas: error: {exc}", file=sys.stderr)
        return 2
    return 0
