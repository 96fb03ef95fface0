"""The README's hand-typed examples name real records of `switch up`'s default population
and parse as valid text-form requests."""

from __future__ import annotations

import re
from pathlib import Path

from services.population import generate
from switch.contract.textform import parse_text

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_submit_examples_address_seeded_records() -> None:
    text = README.read_text()
    examples = re.findall(r"switch submit '([^']+)'", text)
    assert len(examples) >= 3
    records = {r.lno: r for r in generate(1000, 1)}  # `switch up` seeds 1000 with seed 1
    for example in examples:
        req = parse_text(example, image=b"\xff\xd8" if example.startswith("EIM") else None)
        lno = getattr(req, "lno", None)
        assert lno in records, example
        assert records[lno].ori == req.ori, f"{example}: not the record owner"
    assert any(records[getattr(parse_text(e), "lno", "")].rtype == "VOAY"
               for e in examples if e.startswith("QIM"))
