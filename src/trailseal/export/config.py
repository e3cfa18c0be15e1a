"""``DATA/exports.yaml``: the destinations the exporter sends to, by name.

::

    destinations:
      splunk:
        type: hec                      # hec, elastic, syslog, file
        url: https://splunk.example:8088
        token_file: splunk.token       # relative paths are from DATA
        index: audit                   # optional
        sourcetype: "trailseal:audit"  # the default
        ack: true                      # indexer acknowledgement (the default)
      elastic:
        type: elastic
        url: https://es.example:9200
        index: trailseal-audit
        format: ecs                    # or ocsf
        api_key_file: es.key           # optional
      siem:
        type: syslog
        host: siem.example
        port: 6514
        protocol: tls                  # udp, tcp or tls
        ca_file: siem-ca.pem           # optional; else the system's CAs
        format: json                   # or cef
      lake:
        type: file
        path: /var/spool/trailseal/ocsf.jsonl
        format: ocsf                   # or ecs

Every destination may also say ``query`` (the search language: what goes; default
everything), ``details`` (whether details go; default false, details being the
sensitive part), ``batch`` (entries a request, default 500), ``max_lag`` (entries behind
before an alert) and ``verify`` (for HTTPS: false, or a CA file).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trailseal.errors import ConfigError, QueryError
from trailseal.export.destinations import (
    FORMATS,
    Destination,
    ElasticBulk,
    JsonLines,
    SplunkHEC,
    Syslog,
)
from trailseal.query import Node, parse

TYPES = ("hec", "elastic", "syslog", "file")
_COMMON = {"type", "query", "details", "batch", "max_lag"}
_KEYS = {
    "hec": {"url", "token_file", "index", "sourcetype", "source", "ack", "ack_timeout", "verify"},
    "elastic": {"url", "index", "format", "api_key_file", "verify"},
    "syslog": {"host", "port", "protocol", "ca_file", "format"},
    "file": {"path", "format"},
}


@dataclass(frozen=True)
class DestinationConfig:
    """One destination as configured, checked; :meth:`open` makes its client."""

    name: str
    kind: str
    settings: dict[str, Any]
    where: Node | None
    query: str | None
    details: bool
    batch: int
    max_lag: int | None
    root: Path

    def _path(self, key: str) -> Path | None:
        value = self.settings.get(key)
        if value is None:
            return None
        path = Path(str(value))
        return path if path.is_absolute() else self.root / path

    def _secret(self, key: str) -> str | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            found = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"destination {self.name}: {key}: cannot read {path}: {exc}"
            ) from None
        if not found:
            raise ConfigError(f"destination {self.name}: {key}: {path} is empty")
        return found

    def _verify(self) -> bool | str:
        value = self.settings.get("verify", True)
        if isinstance(value, bool):
            return value
        return str(self._file("verify"))

    def _file(self, key: str) -> Path:
        """A file the destination names (a CA), which must be there and readable."""
        path = self._path(key)
        assert path is not None  # asked only for keys that are set
        if not path.is_file():
            raise ConfigError(f"destination {self.name}: {key}: {path} is not a file")
        return path

    def open(self) -> Destination:
        """The destination's client (reading its secrets and CA files now)."""
        try:
            return self._open()
        except (OSError, ssl.SSLError) as exc:  # a CA file that is not a certificate
            raise ConfigError(f"destination {self.name}: cannot set up TLS: {exc}") from None

    def _open(self) -> Destination:
        s = self.settings
        if self.kind == "hec":
            token = self._secret("token_file")
            assert token is not None  # checked at load
            return SplunkHEC(
                self.name,
                str(s["url"]),
                token,
                index=s.get("index"),
                sourcetype=str(s.get("sourcetype", "trailseal:audit")),
                source=str(s.get("source", "trailseal")),
                ack=bool(s.get("ack", True)),
                ack_timeout=float(s.get("ack_timeout", 120)),
                verify=self._verify(),
            )
        if self.kind == "elastic":
            return ElasticBulk(
                self.name,
                str(s["url"]),
                str(s["index"]),
                fmt=str(s.get("format", "ecs")),
                api_key=self._secret("api_key_file"),
                verify=self._verify(),
            )
        if self.kind == "syslog":
            from trailseal import __version__  # noqa: PLC0415 - the CEF header names it

            return Syslog(
                self.name,
                str(s["host"]),
                int(s["port"]),
                str(s.get("protocol", "tcp")),
                ca_file=self._file("ca_file") if s.get("ca_file") else None,
                cef=s.get("format", "json") == "cef",
                version=__version__,
            )
        path = self._path("path")
        assert path is not None  # checked at load
        return JsonLines(self.name, path, str(s.get("format", "ocsf")))


def _check(name: str, item: dict[str, Any]) -> None:
    kind = item.get("type")
    if kind not in TYPES:
        raise ConfigError(f"destination {name}: type is one of {', '.join(TYPES)}, not {kind!r}")
    unknown = set(item) - _COMMON - _KEYS[kind]
    if unknown:
        raise ConfigError(
            f"destination {name}: unknown {', '.join(sorted(unknown))}; a {kind} destination "
            f"takes {', '.join(sorted(_KEYS[kind] | _COMMON))}"
        )
    needed = {
        "hec": ("url", "token_file"),
        "elastic": ("url", "index"),
        "syslog": ("host", "port"),
        "file": ("path",),
    }[kind]
    missing = [key for key in needed if item.get(key) in (None, "")]
    if missing:
        raise ConfigError(f"destination {name}: {', '.join(missing)} required")
    fmt = item.get("format")
    allowed = ("json", "cef") if kind == "syslog" else tuple(FORMATS)
    if fmt is not None and (kind == "hec" or fmt not in allowed):
        raise ConfigError(f"destination {name}: format is one of {', '.join(allowed)}")
    if kind == "syslog" and item.get("protocol", "tcp") not in ("udp", "tcp", "tls"):
        raise ConfigError(f"destination {name}: protocol is udp, tcp or tls")
    for key in ("batch", "max_lag", "port"):
        value = item.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise ConfigError(
                f"destination {name}: {key} is a positive whole number, not {value!r}"
            )
    if item.get("batch", 1) > 10_000:
        raise ConfigError(f"destination {name}: batch is at most 10000")
    verify = item.get("verify", True)
    if not isinstance(verify, bool | str):
        raise ConfigError(f"destination {name}: verify is false, or a CA file")


def load_destinations(path: Path) -> dict[str, DestinationConfig]:
    """Every destination ``path`` names, checked (none without the file)."""
    try:
        found = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {str(exc).splitlines()[0]}") from None
    if found is None:
        return {}
    if not isinstance(found, dict) or set(found) - {"destinations"}:
        raise ConfigError(f"{path}: the only key is destinations, a mapping of names")
    listed = found.get("destinations") or {}
    if not isinstance(listed, dict):
        raise ConfigError(f"{path}: destinations is a mapping of names to settings")
    configs = {}
    for name, item in listed.items():
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{path}: {name!r}: a destination's name is letters, digits, - and _")
        if not isinstance(item, dict):
            raise ConfigError(f"{path}: destination {name}: settings are a mapping")
        try:
            _check(name, item)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        query = item.get("query")
        try:
            where = parse(str(query)).root if query else None
        except QueryError as exc:
            raise ConfigError(f"{path}: destination {name}: query: {exc.diagnostics()}") from None
        configs[name] = DestinationConfig(
            name=name,
            kind=str(item["type"]),
            settings=item,
            where=where,
            query=str(query) if query else None,
            details=bool(item.get("details", False)),
            batch=int(item.get("batch", 500)),
            max_lag=item.get("max_lag"),
            root=path.parent,
        )
    return configs
