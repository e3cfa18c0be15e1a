"""Settings: flags, then ``TRAILSEAL_*`` environment variables, then ``DATA/config.toml``.

What the data directory holds is :mod:`trailseal.layout`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from trailseal.errors import ConfigError
from trailseal.events import DEFAULT_MAX_EVENT_BYTES, EventLimits
from trailseal.layout import DataLayout, resolve_data_dir

__all__ = ["Settings", "default_store", "resolve_data_dir", "write_config"]
_KNOWN = {"origin", "key", "max_event_bytes", "store"}


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one log."""

    data_dir: Path
    origin: str
    key_path: Path
    limits: EventLimits
    store: str  # the store URL: sqlite:///DATA/log.db unless set

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def db_path(self) -> Path:
        """The SQLite file, for the embedded store (unused with PostgreSQL)."""
        return self.layout.database

    @classmethod
    def load(
        cls,
        data_dir: Path,
        *,
        key_path: str | os.PathLike[str] | None = None,
        max_event_bytes: int | None = None,
        store: str | None = None,
    ) -> Settings:
        """``store``, ``key_path`` and ``max_event_bytes`` are flags: they win over
        ``TRAILSEAL_STORE``, ``TRAILSEAL_KEY`` and ``TRAILSEAL_MAX_EVENT_BYTES``, which win
        over the data directory's ``config.toml``."""
        layout = DataLayout(data_dir)
        file = _read_config(layout.config)
        configured_key = file.get("key")
        key = (
            key_path
            or os.environ.get("TRAILSEAL_KEY")
            or (configured_key if isinstance(configured_key, str) else None)
            or layout.signing_key
        )
        env_max = os.environ.get("TRAILSEAL_MAX_EVENT_BYTES")
        size = max_event_bytes or (int(env_max) if env_max and env_max.isdigit() else None)
        configured = file.get("max_event_bytes", DEFAULT_MAX_EVENT_BYTES)
        size = size or (configured if isinstance(configured, int) else DEFAULT_MAX_EVENT_BYTES)
        try:
            limits = EventLimits(max_bytes=size)
        except ValueError as exc:
            raise ConfigError(f"max_event_bytes: {exc}") from None
        configured_store = file.get("store")
        url = (
            store
            or os.environ.get("TRAILSEAL_STORE")
            or (configured_store if isinstance(configured_store, str) else None)
            or default_store(data_dir)
        )
        return cls(data_dir, str(file.get("origin", "")), Path(key), limits, url)


def default_store(data_dir: Path) -> str:
    """The embedded default: one SQLite file in the data directory."""
    return f"sqlite:///{DataLayout(data_dir).database}"


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


def write_config(
    data_dir: Path, origin: str, key_path: Path | None, store: str | None = None
) -> None:
    lines = [f"origin = {_toml_string(origin)}"]
    if key_path is not None:
        lines.append(f"key = {_toml_string(str(key_path))}")
    if store is not None:
        lines.append(f"store = {_toml_string(store)}")
    lines.append(f"max_event_bytes = {DEFAULT_MAX_EVENT_BYTES}")
    DataLayout(data_dir).config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
