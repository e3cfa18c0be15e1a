"""The detection engine's own state: its cursor and rule state, first-seen memory, alerts,
and the deliveries of alerts to sinks (``DATA/detection.db`` beside a SQLite log; tables
of the log's own schema with a PostgreSQL store).

Everything the engine learns from one batch of entries is written in one
transaction with the cursor that says the batch is done, so a crash replays
the batch from the same state and nothing is raised twice or lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from trailseal.config import Settings
from trailseal.errors import NotFoundError, StorageError
from trailseal.layout import DataLayout
from trailseal.storage import DETECTION, StateDatabase, open_state

EVIDENCE_LIMIT = 1000  # indexes kept per alert; the first ones, then the latest


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    title: str
    severity: str
    group: str
    evidence: list[int]
    first_seen: str
    last_seen: str
    status: str
    reason: str | None
    created_at: str
    tenant: str | None  # its evidence's; None for the log's own (integrity, silence)
    version: int = 1  # one more with each merge of evidence
    logged: int = 0  # the latest version written into the log
    disposition: str | None = None  # how a resolved alert was closed (DISPOSITIONS)

    @classmethod
    def from_json(cls, found: dict[str, Any], *, version: int) -> Alert:
        """An alert as an ``alert.raised`` or ``alert.updated`` entry's detail gives it."""
        return cls(
            id=int(found["id"]),
            rule=str(found["rule"]),
            title=str(found.get("title", "")),
            severity=str(found.get("severity", "")),
            group=str(found.get("group", "")),
            evidence=[int(i) for i in found.get("evidence", [])],
            first_seen=str(found.get("first_seen", "")),
            last_seen=str(found.get("last_seen", "")),
            status=str(found.get("status", "open")),
            reason=found.get("reason"),
            created_at=str(found.get("created_at", "")),
            tenant=found.get("tenant"),
            version=version,
            logged=version,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "group": self.group,
            "evidence": self.evidence,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "status": self.status,
            "reason": self.reason,
            "created_at": self.created_at,
            "tenant": self.tenant,
        } | ({"disposition": self.disposition} if self.disposition else {})


_ALERT_COLUMNS = (
    "id, rule, title, severity, group_key, evidence, first_seen, last_seen, status, reason, "
    "created_at, tenant, version, logged, disposition"
)


def _alert(row: tuple[Any, ...]) -> Alert:
    values = list(row)
    values[5] = orjson.loads(values[5])
    return Alert(*values)


class DetectionStore:
    """One connection to the detection state, used by one engine or one command."""

    def __init__(self, db: StateDatabase | Path) -> None:
        self.db = db if isinstance(db, StateDatabase) else StateDatabase.sqlite(db, DETECTION)
        self._latest: dict[tuple[str, str, str], list[Any] | None] = {}  # this batch's open alerts
        self._dirty: dict[int, list[Any]] = {}  # alert id: [id, evidence, last seen]

    def reopen(self) -> DetectionStore:
        """Another connection to the same state (for another thread, e.g. the sinks)."""
        return DetectionStore(self.db.reopen())

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.db.transaction():
                yield
                self.flush_merges()
        except BaseException:
            self._latest.clear()
            self._dirty.clear()
            raise

    # -- state ----------------------------------------------------------------

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self.db.one("SELECT value FROM state WHERE key = ?", (key,))
        return default if row is None else orjson.loads(bytes(row[0]))

    def put_state(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, orjson.dumps(value)),
        )

    # -- first-seen memory ---------------------------------------------------------

    def seen(self, actor: str, kind: str) -> set[str]:
        rows = self.db.rows(
            "SELECT value FROM first_seen WHERE actor = ? AND kind = ?", (actor, kind)
        )
        return {row[0] for row in rows}

    def remember_many(self, values: list[tuple[str, str, str]]) -> None:
        self.db.executemany(
            "INSERT INTO first_seen (actor, kind, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            values,
        )

    # -- alerts ------------------------------------------------------------------

    def raise_alert(  # noqa: PLR0913 - an alert's parts, by name
        self,
        *,
        rule: str,
        title: str,
        severity: str,
        group: str,
        tenant: str | None = None,
        evidence: list[int],
        first: str,
        last: str,
        dedup_seconds: int,
        now: str,
        sinks: list[str],
    ) -> tuple[int, bool]:
        """Store an alert, or merge it into the open one of the same rule and group seen
        within ``dedup_seconds``; returns (alert id, whether it is new). Merges are kept
        in memory and written by :meth:`flush_merges`, in the same transaction."""
        key = (rule, tenant or "", group)
        if key not in self._latest:
            row = self.db.one(
                "SELECT id, evidence, last_seen, first_seen FROM alerts WHERE rule = ? "
                "AND coalesce(tenant, '') = ? AND group_key = ? "
                "AND status != 'resolved' ORDER BY id DESC LIMIT 1",
                key,
            )
            self._latest[key] = (
                None if row is None else [row[0], orjson.loads(row[1]), row[2], row[3]]
            )
        latest = self._latest[key]
        if latest is not None and _seconds_between(latest[2], first) <= dedup_seconds:
            latest[1] = _merged(latest[1], evidence)
            latest[2] = max(latest[2], last)
            latest[3] = min(latest[3], first)  # evidence may arrive out of order
            self._dirty[int(latest[0])] = latest
            return int(latest[0]), False
        # Ids are never reused, even when the newest row was deleted: the log names
        # alerts by id, and a second alert under a logged id would contradict it.
        highest = self.db.one("SELECT coalesce(max(id), 0) FROM alerts")
        alert_id = max(int(highest[0]) if highest else 0, self.get_state("last_alert_id", 0)) + 1
        self.put_state("last_alert_id", alert_id)
        self.db.execute(
            "INSERT INTO alerts (id, rule, title, severity, group_key, evidence, first_seen, "
            "last_seen, created_at, tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                rule,
                title,
                severity,
                group,
                orjson.dumps(evidence[:EVIDENCE_LIMIT]).decode(),
                first,
                last,
                now,
                tenant,
            ),
        )
        self._latest[key] = [alert_id, evidence[:EVIDENCE_LIMIT], last, first]
        self.db.executemany(
            "INSERT INTO deliveries (alert_id, sink, due) VALUES (?, ?, 0)",
            [(alert_id, sink) for sink in sinks],
        )
        return alert_id, True

    def flush_merges(self) -> None:
        """Write the evidence merged since the batch began, and forget the cache (another
        process may resolve an alert between batches)."""
        self.db.executemany(
            "UPDATE alerts SET evidence = ?, last_seen = ?, first_seen = ?, "
            "version = version + 1 WHERE id = ?",
            [
                (orjson.dumps(kept[1]).decode(), kept[2], kept[3], kept[0])
                for kept in self._dirty.values()
            ],
        )
        self._dirty.clear()
        self._latest.clear()

    def alert(self, alert_id: int) -> Alert:
        row = self.db.one(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?",  # noqa: S608 - constant columns
            (alert_id,),
        )
        if row is None:
            raise NotFoundError(f"no alert {alert_id}")
        return _alert(row)

    def alerts(self, status: str | None = None, rule: str | None = None) -> list[Alert]:
        where, args = [], []
        if status:
            where.append("status = ?")
            args.append(status)
        if rule:
            where.append("rule = ?")
            args.append(rule)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.rows(
            f"SELECT {_ALERT_COLUMNS} FROM alerts{clause} ORDER BY id",  # noqa: S608
            args,
        )
        return [_alert(row) for row in rows]

    def unlogged(self) -> list[Alert]:
        """Alerts whose latest version is not in the log yet."""
        rows = self.db.rows(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE logged < version ORDER BY id"  # noqa: S608
        )
        return [_alert(row) for row in rows]

    def mark_logged(self, alert_id: int, version: int) -> None:
        self.db.execute(
            "UPDATE alerts SET logged = ? WHERE id = ? AND logged < ?",
            (version, alert_id, version),
        )

    def restore(self, alert: Alert) -> None:
        """Put an alert back as the log describes it (its row deleted or edited)."""
        values = (
            alert.rule,
            alert.title,
            alert.severity,
            alert.group,
            orjson.dumps(alert.evidence).decode(),
            alert.first_seen,
            alert.last_seen,
            alert.status,
            alert.reason,
            alert.created_at,
            alert.tenant,
            alert.version,
            alert.version,
            alert.disposition,
        )
        updated = self.db.execute(
            "UPDATE alerts SET rule = ?, title = ?, severity = ?, group_key = ?, evidence = ?, "
            "first_seen = ?, last_seen = ?, status = ?, reason = ?, created_at = ?, tenant = ?, "
            "version = ?, logged = ?, disposition = ? WHERE id = ?",
            (*values, alert.id),
        )
        if not updated.rowcount:
            self.db.execute(
                f"INSERT INTO alerts ({_ALERT_COLUMNS}) "  # noqa: S608 - constant columns
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alert.id, *values),
            )

    def forget(self, alert_id: int) -> None:
        """Remove an alert the log has no record of (a row added to the database)."""
        self.db.execute("DELETE FROM deliveries WHERE alert_id = ?", (alert_id,))
        self.db.execute("DELETE FROM alerts WHERE id = ?", (alert_id,))

    def set_status(
        self, alert_id: int, status: str, reason: str | None, disposition: str | None = None
    ) -> Alert:
        self.alert(alert_id)  # NotFoundError names a missing one
        self.db.execute(
            "UPDATE alerts SET status = ?, reason = ?, disposition = ? WHERE id = ?",
            (status, reason, disposition, alert_id),
        )
        return self.alert(alert_id)

    # -- deliveries ----------------------------------------------------------------

    def due(self, now: float, limit: int = 100) -> list[tuple[int, int, str, int]]:
        return [
            (int(a), int(b), str(c), int(d))
            for a, b, c, d in self.db.rows(
                "SELECT id, alert_id, sink, attempts FROM deliveries "
                "WHERE status = 'pending' AND due <= ? ORDER BY due, id LIMIT ?",
                (now, limit),
            )
        ]

    def delivered(self, delivery_id: int) -> None:
        self.db.execute(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, "
            "last_error = NULL WHERE id = ?",
            (delivery_id,),
        )

    def failed(self, delivery_id: int, error: str, retry_at: float | None) -> None:
        self.db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, due = ?, "
            "status = ? WHERE id = ?",
            (error[:1000], retry_at or 0, "pending" if retry_at else "dead", delivery_id),
        )

    def dead(self) -> list[tuple[int, int, str, int, str]]:
        return [
            (int(a), int(b), str(c), int(d), str(e))
            for a, b, c, d, e in self.db.rows(
                "SELECT id, alert_id, sink, attempts, last_error FROM deliveries "
                "WHERE status = 'dead' ORDER BY id"
            )
        ]

    def replay_dead(self) -> int:
        cursor = self.db.execute(
            "UPDATE deliveries SET status = 'pending', due = 0, attempts = 0 WHERE status = 'dead'"
        )
        return int(cursor.rowcount)


def _merged(kept: list[int], more: list[int]) -> list[int]:
    """Evidence so far plus more, in order; past the limit, the first and the latest."""
    newer = more and kept and more[0] > kept[-1]  # the usual case: later entries
    merged = kept + more if newer else sorted(set(kept) | set(more))
    if len(merged) > EVIDENCE_LIMIT:
        merged = merged[: EVIDENCE_LIMIT // 2] + merged[-EVIDENCE_LIMIT // 2 :]
    return merged


def _seconds_between(earlier: str, later: str) -> float:
    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
    except ValueError:
        return float("inf")


def open_store(data_dir: Path, store: str | None = None) -> DetectionStore:
    """The detection state of the log in ``data_dir`` (whose store is ``store``, else as
    its settings say)."""
    if not data_dir.is_dir():
        raise StorageError(f"{data_dir} is not a data directory")
    url = store or Settings.load(data_dir).store
    return DetectionStore(open_state(url, DataLayout(data_dir).detection, DETECTION))
