"""Docs that are tested: the README's commands, its Python example, the CLI reference, __all__."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import trailseal
from trailseal.cli._reference import reference
from trailseal.errors import QueryError
from trailseal.query import PRESENCE_FIELDS, QUALIFIERS, parse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, flags=re.DOTALL)


def test_readme_second_command_is_what_ci_runs() -> None:
    second = _shell_blocks()[1].strip()
    assert "pytest" in second
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci


def test_readme_first_command_runs_the_demo() -> None:
    """The command itself runs in tests/test_demo.py (a shorter month)."""
    first = _shell_blocks()[0].strip()
    assert first.endswith("pip install . && trailseal demo")


def test_quickstart_script_runs(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("TRAILSEAL_DATA", None)
    result = subprocess.run(
        ["bash", str(ROOT / "examples" / "quickstart.sh"), str(tmp_path / "data")],
        capture_output=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b'"proof"' in result.stdout
    assert b"OK: 45 entries" in result.stderr  # 44 events and the search's audit.read


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = re.findall(r"```python\n(.*?)\n```", README, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "trailseal-data" / "log.db").exists()


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == reference(), "run: python -m trailseal.cli._reference > docs/cli.md"


def test_every_command_is_documented_in_the_readme_or_reference() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for name in (
        "init",
        "append",
        "get",
        "export",
        "checkpoint",
        "pubkey",
        "prove inclusion",
        "prove consistency",
        "verify",
        "verify-export",
        "erase",
        "search",
    ):
        assert f"## trailseal {name}\n" in text


def test_public_surface_is_pinned() -> None:
    assert sorted(trailseal.__all__) == [
        "AppendResult",
        "BatchError",
        "CaptureError",
        "Checkpoint",
        "ConfigError",
        "ConsistencyProof",
        "EntryView",
        "Event",
        "EventError",
        "IdConflictError",
        "InclusionProof",
        "Ledger",
        "NotFoundError",
        "ProofError",
        "SearchFilter",
        "Signer",
        "StorageError",
        "StoreUnavailableError",
        "TamperError",
        "TrailsealError",
        "VerificationError",
        "VerificationReport",
        "Verifier",
        "__version__",
        "canonical",
        "parse_event",
        "verify_consistency",
        "verify_export",
        "verify_inclusion",
    ]
    for name in trailseal.__all__:
        assert hasattr(trailseal, name)


def test_glossary_words_are_used_in_code() -> None:
    glossary = (ROOT / "docs" / "glossary.md").read_text()
    for word in ("entry", "leaf hash", "chain hash", "checkpoint", "detail", "index", "erasure"):
        assert f"**{word}**" in glossary


def test_every_search_example_in_the_docs_parses() -> None:
    text = (ROOT / "docs" / "search.md").read_text()
    examples = re.findall(r"trailseal search '([^']*)'", text)
    examples += re.findall(r"`((?:-|\()?[a-z]+:[^`]+)`", text)
    assert len(examples) > 15
    for example in examples:
        if example == "qualifier:value":
            continue
        if example.startswith("actr:"):
            with pytest.raises(QueryError):
                parse(example)
        else:
            parse(example)


def test_the_search_docs_list_every_qualifier() -> None:
    text = (ROOT / "docs" / "search.md").read_text()
    listed = re.findall(r"^\| `(\w+):` ", text, flags=re.MULTILINE)
    assert listed == [*QUALIFIERS, "has"]
    for field in PRESENCE_FIELDS:
        assert f"`{field}`" in text


def test_every_kind_of_bundle_damage_is_documented() -> None:
    source = (ROOT / "src" / "trailseal" / "reports" / "bundle.py").read_text()
    kinds = set(re.findall(r'_fail\(\s*"([a-z-]+)"', source))
    documented = (ROOT / "docs" / "reports.md").read_text()
    assert kinds, "no kinds found"
    assert {kind for kind in kinds if f"`{kind}`" not in documented} == set()
