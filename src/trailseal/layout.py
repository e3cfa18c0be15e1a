"""The data directory's layout: every file name in it is spelled here and nowhere else.

::

    DATA/
      config.toml        settings (origin, store URL, key path, limits)
      log.db             the SQLite store (absent when the store is PostgreSQL)
      verifier.key       the public key, for auditors
      signing.key        the Ed25519 signing key, mode 0600 (unless --key puts it elsewhere)
      signing.key.last   the last checkpoint that key signed (beside the key, wherever it is)
      principals.db      principals and token hashes (SQLite store only)
      detection.db       the detection engine's state and alerts (SQLite store only)
      detection.yaml     detection settings: rules, context, sinks
      retention.yaml     retention policies (how long entries stay hot, and in all)
      imports.yaml       sources `serve` imports on an interval (Terraform Cloud)
      imports/           each source's cursor (where the last import ended)
      exports.yaml       destinations the exporter sends entries to (Splunk, Elastic, syslog)
      exports/           each destination's cursor and status, and its dead letters
      logs/NAME/         each further log of the deployment: a data directory of its own
                         (config.toml naming the log and its tenants, its signing key,
                         verifier key, log.db, detection and exports); the directory
                         itself holds the default log
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA = "trailseal-data"
DEFAULT_LOG = "default"  # the log a deployment's data directory itself holds


def resolve_data_dir(flag: str | os.PathLike[str] | None) -> Path:
    """``--data``, else ``TRAILSEAL_DATA``, else ``./trailseal-data``."""
    return Path(flag or os.environ.get("TRAILSEAL_DATA") or DEFAULT_DATA)


def last_signed_path(key_path: Path) -> Path:
    """Where the last checkpoint a key signed is kept: beside the key."""
    return key_path.with_name(key_path.name + ".last")


def last_signed_lock_path(key_path: Path) -> Path:
    """The lock that orders the writers of :func:`last_signed_path` (several processes,
    or a service and its detection, sign with one key)."""
    return key_path.with_name(key_path.name + ".last.lock")


@dataclass(frozen=True)
class DataLayout:
    """The paths of one data directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def database(self) -> Path:
        return self.root / "log.db"

    @property
    def verifier(self) -> Path:
        return self.root / "verifier.key"

    @property
    def signing_key(self) -> Path:
        return self.root / "signing.key"

    @property
    def principals(self) -> Path:
        return self.root / "principals.db"

    @property
    def detection(self) -> Path:
        return self.root / "detection.db"

    @property
    def detection_config(self) -> Path:
        return self.root / "detection.yaml"

    @property
    def retention_config(self) -> Path:
        return self.root / "retention.yaml"

    def lease_lock(self, name: str) -> Path:
        """Held (flock) by the process doing work that runs once per log on SQLite
        (``retention``, ``detection``); on PostgreSQL an advisory lock does it."""
        return self.root / f"{name}.lock"

    @property
    def retention_state(self) -> Path:
        """When retention last ran on its schedule (JSON), so a restart runs it once."""
        return self.root / "retention.state.json"

    @property
    def imports_config(self) -> Path:
        return self.root / "imports.yaml"

    def import_cursor(self, source: str, name: str) -> Path:
        """Where an import from ``source`` (``terraform``) for ``name`` (an organisation)
        ended, so the next run asks only for what came after."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.root / "imports" / f"{source}-{safe}.json"

    @property
    def exports_config(self) -> Path:
        return self.root / "exports.yaml"

    def export_state(self, name: str) -> Path:
        """A destination's cursor, counts and last error (JSON)."""
        return self.root / "exports" / f"{name}.json"

    def export_dead(self, name: str) -> Path:
        """A destination's dead letters: what it refused for good, with the reason."""
        return self.root / "exports" / f"{name}.dead.jsonl"

    @property
    def logs(self) -> Path:
        """Where a deployment's further logs live, one directory each."""
        return self.root / "logs"

    def log_dir(self, name: str) -> Path:
        return self.logs / name

    @property
    def report_schedules(self) -> Path:
        return self.root / "reports.yaml"

    @property
    def report_schedule_state(self) -> Path:
        """When each scheduled report last ran (JSON), so a restart runs nothing twice."""
        return self.root / "reports.state.json"
