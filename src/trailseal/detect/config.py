"""Detection settings: ``DATA/detection.yaml``, overridden by ``--rules`` and ``--context``.

.. code-block:: yaml

    rules: [builtin, rules]            # "builtin" is the shipped pack; paths are under DATA
    context:
      roster: context/roster.csv       # user_id,unit,shift_start,shift_end,timezone
      geography: context/geo.csv       # network,country; or a MaxMind .mmdb
      ownership: context/owners.csv    # resource_type,resource_id,unit
    sinks:
      - {name: siem, type: syslog, host: 127.0.0.1, port: 514, protocol: udp}
      - {name: soc, type: webhook, url: "https://soc.example/hook", secret_file: soc.secret}
      - {name: file, type: jsonl, path: alerts.jsonl}
      - {name: console, type: stdout}
    silence:
      - {source: ehr, expected: 15m}   # source.service (or tenant) quiet longer than this
    max_lag: 5m                        # detection stopped or behind longer: alert, degraded

Without the file: the built-in pack, no context files, no sinks (alerts are
stored and written into the log all the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trailseal.detect.rules import BUILTIN, duration
from trailseal.detect.sinks import (
    JsonLinesSink,
    Sink,
    StdoutSink,
    SyslogSink,
    WebhookSink,
    webhook_key,
)
from trailseal.errors import ConfigError
from trailseal.layout import DataLayout


@dataclass
class Silence:
    source: str
    expected: int  # seconds


@dataclass
class DetectionConfig:
    rules: list[Path] = field(default_factory=lambda: [BUILTIN])
    roster: Path | None = None
    geography: Path | None = None
    ownership: Path | None = None
    sinks: list[Sink] = field(default_factory=list)
    silence: list[Silence] = field(default_factory=list)
    max_lag: int = 300  # seconds detection may be stopped or behind before it alerts


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _path(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a file path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _read(path: Path) -> dict[str, Any]:
    try:
        return _mapping(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: bad YAML: {exc}".split("\n")[0]) from None


def load_config(
    data_dir: Path, rules: list[str] | None = None, context_file: str | None = None
) -> DetectionConfig:
    """The data directory's settings, with ``--rules`` / ``--context`` taking precedence."""
    file = DataLayout(data_dir).detection_config
    settings = _read(file) if file.exists() else {}
    unknown = set(settings) - {"rules", "context", "sinks", "silence", "max_lag"}
    if unknown:
        raise ConfigError(f"{file}: unknown setting {min(unknown)!r}")
    config = DetectionConfig()
    listed = rules or settings.get("rules")
    if listed is not None:
        config.rules = _rule_paths(data_dir, listed, "--rules" if rules else str(file))
    if context_file:
        _context(config, Path(context_file).parent, _read(Path(context_file)))
    else:
        _context(config, data_dir, _mapping(settings.get("context"), "context"))
    config.sinks = [_sink(data_dir, spec, n) for n, spec in enumerate(settings.get("sinks") or [])]
    names = [sink.name for sink in config.sinks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{file}: two sinks have the same name")
    config.silence = [_silence(spec, n) for n, spec in enumerate(settings.get("silence") or [])]
    if "max_lag" in settings:
        try:
            config.max_lag = duration(settings["max_lag"], "max_lag")
        except ValueError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    return config


def _rule_paths(data_dir: Path, listed: Any, file: str) -> list[Path]:
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        raise ConfigError(f"{file}: rules is a list of folders (or 'builtin')")
    paths = [BUILTIN if r == "builtin" else _path(data_dir, r, "rules") for r in listed]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:  # watching with no rules would move past every entry having checked none
        raise ConfigError(f"{file}: no such folder or file of rules: {', '.join(missing)}")
    return paths


def _context(config: DetectionConfig, base: Path, context: dict[str, Any]) -> None:
    extra = set(context) - {"roster", "geography", "ownership"}
    if extra:
        raise ConfigError(f"context: unknown file kind {min(extra)!r}")
    for key in ("roster", "geography", "ownership"):
        if context.get(key) is not None:
            setattr(config, key, _path(base, context[key], f"context.{key}"))


def _silence(spec: Any, n: int) -> Silence:
    given = _mapping(spec, f"silence[{n}]")
    try:
        return Silence(str(given["source"]), duration(given["expected"], "expected"))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"silence[{n}]: {exc}") from None


def _http_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"url {url!r} is not an http(s) address")
    return url


def _sink(data_dir: Path, given: Any, n: int) -> Sink:
    spec = _mapping(given, f"sinks[{n}]")
    kind = spec.get("type")
    name = str(spec.get("name") or kind)
    try:
        if kind == "stdout":
            return StdoutSink(name)
        if kind == "jsonl":
            return JsonLinesSink(name, _path(data_dir, spec.get("path"), f"sinks[{n}].path"))
        if kind == "syslog":
            ca = spec.get("ca_file")
            return SyslogSink(
                name,
                str(spec.get("host", "127.0.0.1")),
                int(spec.get("port", 514)),
                str(spec.get("protocol", "udp")),
                _path(data_dir, ca, f"sinks[{n}].ca_file") if ca else None,
            )
        if kind == "webhook":
            url = _http_url(str(spec["url"]))
            secret_file = _path(data_dir, spec.get("secret_file"), f"sinks[{n}].secret_file")
            return WebhookSink(name, url, webhook_key(secret_file.read_text().strip()))
    except (KeyError, ValueError, OSError) as exc:
        raise ConfigError(f"sinks[{n}] ({name}): {exc}") from None
    raise ConfigError(f"sinks[{n}]: type is one of stdout, jsonl, syslog, webhook, not {kind!r}")
