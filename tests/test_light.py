"""An application that only sends events loads only what sending needs, and the CLI starts
fast; start-up times themselves are measured in bench/startup.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "sigma",
    "re2",
    "yaml",
    "sqlalchemy",
    "psycopg",
    "cryptography",
    "trailseal.ledger",
    "trailseal.server",
    "trailseal.detect",
    "trailseal.app",
    "trailseal.storage",
)


def _loaded(code: str) -> set[str]:
    script = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize(
    "code",
    [
        "import trailseal.client",
        "from trailseal.client import Client",
        "import trailseal.capture",
        "from trailseal.capture import AuditMiddleware",
        "import trailseal",
    ],
)
def test_senders_load_nothing_heavy(code: str) -> None:
    loaded = _loaded(code)
    found = sorted(
        name for name in loaded if any(name == h or name.startswith(h + ".") for h in HEAVY)
    )
    assert found == []


def test_the_lazy_public_names_resolve() -> None:
    import trailseal  # noqa: PLC0415

    for name in trailseal.__all__:
        assert getattr(trailseal, name) is not None
    with pytest.raises(AttributeError):
        trailseal.NoSuchThing  # noqa: B018


def test_orm_capture_loads_sqlalchemy_only_when_used() -> None:
    assert "sqlalchemy" in _loaded("from trailseal.capture.orm import ChangeCapture")
