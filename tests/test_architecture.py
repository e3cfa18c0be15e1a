"""The import rule of docs/architecture.md holds: its table is read here and every import
of every module (lazy ones inside functions too) is checked against it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "trailseal"
ROW = re.compile(r"^\| `(\w+)` \| [\w ]+ \|(.*)\|$")


def _rule() -> dict[str, set[str]]:
    rule = {}
    for line in (ROOT / "docs" / "architecture.md").read_text().splitlines():
        found = ROW.match(line)
        if found:
            rule[found.group(1)] = set(re.findall(r"`(\w+)`", found.group(2)))
    return rule


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "trailseal" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules() -> list[Path]:
    """Every module but the package's own lazy public names and `python -m trailseal`."""
    top = {SRC / "__init__.py", SRC / "__main__.py"}
    return [path for path in sorted(SRC.rglob("*.py")) if path not in top]


def test_the_table_names_every_package() -> None:
    assert {_package(path) for path in _modules()} == set(_rule())


def test_every_import_follows_the_rule() -> None:
    rule = _rule()
    broken = [
        f"{path.relative_to(SRC)} imports trailseal.{target}"
        for path in _modules()
        for target in sorted(_imports(path) - {_package(path)})
        if target not in rule[_package(path)]
    ]
    assert broken == []


def test_the_rule_points_down() -> None:
    """No package reaches itself through the packages it may import."""
    rule = _rule()

    def reachable(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(rule[start])
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += rule.get(current, set())
        return seen

    assert [package for package in rule if package in reachable(package)] == []
