"""Settings: flags, then ``TRAILSEAL_*`` environment variables, then ``DATA/config.toml``.

A data directory holds ``log.db`` (the SQLite store), ``config.toml``,
``verifier.key`` (public) and, unless ``--key`` puts it elsewhere,
``signing.key`` (mode 0600) with ``signing.key.last``, the last checkpoint the
key signed.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from trailseal.errors import ConfigError
from trailseal.events import DEFAULT_MAX_EVENT_BYTES, EventLimits

DEFAULT_DATA = "trailseal-data"
DB_NAME = "log.db"
CONFIG_NAME = "config.toml"
KEY_NAME = "signing.key"
VERIFIER_NAME = "verifier.key"
_KNOWN = {"origin", "key", "max_event_bytes"}


def resolve_data_dir(flag: str | os.PathLike[str] | None) -> Path:
    """``--data``, else ``TRAILSEAL_DATA``, else ``./trailseal-data``."""
    return Path(flag or os.environ.get("TRAILSEAL_DATA") or DEFAULT_DATA)


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one log."""

    data_dir: Path
    origin: str
    key_path: Path
    limits: EventLimits

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_NAME

    @classmethod
    def load(
        cls,
        data_dir: Path,
        *,
        key_path: str | os.PathLike[str] | None = None,
        max_event_bytes: int | None = None,
    ) -> Settings:
        file = _read_config(data_dir / CONFIG_NAME)
        configured_key = file.get("key")
        key = (
            key_path
            or os.environ.get("TRAILSEAL_KEY")
            or (configured_key if isinstance(configured_key, str) else None)
            or data_dir / KEY_NAME
        )
        env_max = os.environ.get("TRAILSEAL_MAX_EVENT_BYTES")
        size = max_event_bytes or (int(env_max) if env_max and env_max.isdigit() else None)
        configured = file.get("max_event_bytes", DEFAULT_MAX_EVENT_BYTES)
        size = size or (configured if isinstance(configured, int) else DEFAULT_MAX_EVENT_BYTES)
        try:
            limits = EventLimits(max_bytes=size)
        except ValueError as exc:
            raise ConfigError(f"max_event_bytes: {exc}") from None
        return cls(data_dir, str(file.get("origin", "")), Path(key), limits)


def _read_config(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}"
        )
    bad = data.get("max_event_bytes")
    if bad is not None and (not isinstance(bad, int) or isinstance(bad, bool)):
        raise ConfigError(f"{path}: max_event_bytes must be an integer number of bytes")
    return data


def write_config(data_dir: Path, origin: str, key_path: Path | None) -> None:
    lines = [f"origin = {_toml_string(origin)}"]
    if key_path is not None:
        lines.append(f"key = {_toml_string(str(key_path))}")
    lines.append(f"max_event_bytes = {DEFAULT_MAX_EVENT_BYTES}")
    (data_dir / CONFIG_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
