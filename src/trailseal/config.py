"""Settings: flags, then ``TRAILSEAL_*`` environment variables, then ``DATA/config.toml``.

What the data directory holds is :mod:`trailseal.layout`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from trailseal.errors import ConfigError
from trailseal.events import DEFAULT_MAX_EVENT_BYTES, EventLimits
from trailseal.layout import DEFAULT_LOG, DataLayout, resolve_data_dir

__all__ = [
    "DEFAULT_LOG",
    "Settings",
    "check_log_name",
    "default_store",
    "log_names",
    "resolve_data_dir",
    "write_config",
]
_KNOWN = {"origin", "key", "max_event_bytes", "store", "log", "tenants"}
_LOG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,23}\Z")


def check_log_name(name: str) -> str:
    """A log's name: it becomes a directory and a PostgreSQL schema's suffix."""
    if name == DEFAULT_LOG:
        return name
    if not _LOG_NAME.match(name):
        raise ConfigError(
            f"log name {name[:40]!r}: use 1 to 24 lowercase letters, digits or _, "
            "starting with a letter"
        )
    return name


def log_names(deployment: Path) -> list[str]:
    """The deployment's logs: ``default`` (the data directory's own), then the others by
    name."""
    found = DataLayout(deployment).logs
    others = sorted(
        entry.name
        for entry in (found.iterdir() if found.is_dir() else [])
        if entry.is_dir() and (entry / "config.toml").is_file() and _LOG_NAME.match(entry.name)
    )
    return [DEFAULT_LOG, *others]


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one log."""

    data_dir: Path
    origin: str
    key_path: Path
    limits: EventLimits
    store: str  # the store URL: sqlite:///DATA/log.db unless set
    log: str = DEFAULT_LOG  # the log's name in its deployment
    deployment_dir: Path | None = None  # the deployment's data directory (None: data_dir)
    deployment_store: str | None = None  # the deployment's store (None: store)
    tenants: tuple[str, ...] = ()  # the tenants routed to this log (names or patterns)

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def deployment(self) -> DataLayout:
        """The deployment's data directory: where principals and the other logs are."""
        return DataLayout(self.deployment_dir or self.data_dir)

    @property
    def deployment_url(self) -> str:
        return self.deployment_store or self.store

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
        over the data directory's ``config.toml``.

        A directory whose ``config.toml`` names a ``log`` is one of a deployment's further
        logs (``DEPLOYMENT/logs/NAME``): its store is derived from the deployment's (the
        ``store`` flag and ``TRAILSEAL_STORE`` name the deployment's), and its key is its
        own (``TRAILSEAL_KEY`` is the default log's)."""
        layout = DataLayout(data_dir)
        file = _read_config(layout.config)
        name = file.get("log")
        if isinstance(name, str) and name != DEFAULT_LOG:
            return cls._named(
                data_dir,
                file,
                name,
                key_path=key_path,
                max_event_bytes=max_event_bytes,
                store=store,
            )
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

    @classmethod
    def _named(  # noqa: PLR0913 - load's flags, and what the log's config.toml said
        cls,
        data_dir: Path,
        file: dict[str, object],
        name: str,
        *,
        key_path: str | os.PathLike[str] | None,
        max_event_bytes: int | None,
        store: str | None,
    ) -> Settings:
        check_log_name(name)
        deployment_dir = data_dir.parent.parent
        if data_dir != DataLayout(deployment_dir).log_dir(name):
            raise ConfigError(f"{data_dir} holds log {name!r}, but is not DEPLOYMENT/logs/{name}")
        deployment = cls.load(deployment_dir, store=store, max_event_bytes=max_event_bytes)
        layout = DataLayout(data_dir)
        configured_key = file.get("key")
        key = (
            key_path
            or (configured_key if isinstance(configured_key, str) else None)
            or layout.signing_key
        )
        size = max_event_bytes or file.get("max_event_bytes") or deployment.limits.max_bytes
        assert isinstance(size, int)
        try:
            limits = EventLimits(max_bytes=size)
        except ValueError as exc:
            raise ConfigError(f"max_event_bytes: {exc}") from None
        url = log_store(deployment.store, name, layout.database)
        return cls(
            data_dir,
            str(file.get("origin", "")),
            Path(key),
            limits,
            url,
            log=name,
            deployment_dir=deployment_dir,
            deployment_store=deployment.store,
            tenants=_tenants(file, layout.config),
        )


def log_store(deployment: str, name: str, sqlite_file: Path) -> str:
    """The store of the deployment's log ``name``, derived from the deployment's own store
    (so moving the deployment moves every log): the schema ``<schema>_<name>`` of the same
    PostgreSQL database, or ``sqlite_file`` (in the log's own directory) beside SQLite."""
    if deployment.split(":", 1)[0].lower() not in ("postgresql", "postgres"):
        return f"sqlite:///{sqlite_file}"
    parts = urlsplit(deployment)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for key, value in query if key == "schema"), "trailseal")
    rest = [(key, value) for key, value in query if key != "schema"]
    return parts._replace(query=urlencode([*rest, ("schema", f"{schema}_{name}")])).geturl()


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
    _tenants(data, path)
    bad = data.get("max_event_bytes")
    if bad is not None and (not isinstance(bad, int) or isinstance(bad, bool)):
        raise ConfigError(f"{path}: max_event_bytes must be an integer number of bytes")
    return data


def _tenants(data: dict[str, object], path: Path) -> tuple[str, ...]:
    found = data.get("tenants", [])
    if not isinstance(found, list) or not all(isinstance(t, str) and t for t in found):
        raise ConfigError(f"{path}: tenants must be a list of tenant names or patterns")
    return tuple(str(t) for t in found)


def write_config(  # noqa: PLR0913 - every setting a new log's config.toml may hold
    data_dir: Path,
    origin: str,
    key_path: Path | None,
    store: str | None = None,
    *,
    log: str | None = None,
    tenants: tuple[str, ...] = (),
) -> None:
    lines = [f"log = {_toml_string(log)}"] if log else []
    if log:
        lines.append("tenants = [" + ", ".join(_toml_string(t) for t in tenants) + "]")
    lines.append(f"origin = {_toml_string(origin)}")
    if key_path is not None:
        lines.append(f"key = {_toml_string(str(key_path))}")
    if store is not None:
        lines.append(f"store = {_toml_string(store)}")
    lines.append(f"max_event_bytes = {DEFAULT_MAX_EVENT_BYTES}")
    DataLayout(data_dir).config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
