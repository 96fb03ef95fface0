"""The tree shows the switch and the systems it talks to apart (the design card's layout):
`switch/` (the switch's stages and what they share) never imports `services/` (the
simulated LEADS and NCIC), except the command line that starts them; the services share
the contract and the Kafka plumbing, never another stage's code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _offenders(package: str, forbidden: tuple[str, ...], allowed_dirs: tuple[str, ...] = ()) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(allowed_dirs):
            continue
        for name in _imports(path):
            if name.split(".")[0] in forbidden or name.startswith(forbidden):
                out.append(f"{rel} imports {name}")
    return out


def test_the_top_level_folders_of_the_design_card() -> None:
    for name in ("pyproject.toml", "switch", "schemas", "services", "tests", "docker-compose.yml",
                 "README.md"):
        assert (ROOT / name).exists(), name


def test_the_switch_does_not_import_the_services_except_the_command_line() -> None:
    assert _offenders("switch", ("services",), allowed_dirs=("switch/cli/",)) == []


def test_the_services_use_only_the_contract_and_the_plumbing() -> None:
    stages = ("switch.router", "switch.correlator", "switch.console", "switch.cli",
              "switch.loadtest", "switch.scenario", "switch.images")
    assert _offenders("services", stages) == []


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("import services.loop\nfrom switch.router.rules import route\nfrom . import y\n")
    assert _imports(f) == {"services.loop", "switch.router.rules"}
