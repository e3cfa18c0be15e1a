"""The detection engine: entries in index order through the rules, alerts out.

For each batch of new entries, in one transaction of the detection database:
every entry's hashes are re-checked (an entry whose leaf or chain hash does
not recompute raises the integrity rule at once), its fields are enriched
with the organisation's context, every rule is evaluated, matches feed the
correlations, and alerts are stored (merged into an open alert of the same
rule and group within its dedup window) with one delivery per sink. The
cursor and the correlation state are saved in the same transaction, so a
restart neither skips an entry nor raises an alert twice.

After the transaction, each new alert is appended to the log itself as an
``alert.raised`` entry whose id is derived from the alert, so that writing it
twice (after a crash) lands once. Entries whose action starts with
``alert.`` are the engine's own and are not evaluated.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from trailseal.access.actions import trusted
from trailseal.access.tenants import tenant_of
from trailseal.checkpoints import Checkpoint
from trailseal.detect.config import DetectionConfig
from trailseal.detect.context import Context
from trailseal.detect.correlate import Correlator, Firing, group_key
from trailseal.detect.fields import FieldPlan, Fields
from trailseal.detect.projection import (
    ALERT_ACTIONS,
    PROGRESS_ACTION,
    Logged,
    Span,
    compare,
    gaps,
    logged,
    own_record,
    project,
    spans,
)
from trailseal.detect.rules import Correlation, Rule, RulePack
from trailseal.detect.store import Alert, DetectionStore
from trailseal.errors import ConfigError, StorageError, StoreUnavailableError, TrailsealError
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger, SearchFilter
from trailseal.ledger.entry import LOG_SUBMITTER
from trailseal.proofs import verify_consistency
from trailseal.proofs.hashing import chain_hash, leaf_hash

logger = logging.getLogger("trailseal.detect")

INTEGRITY_ACTION = "trailseal.integrity.failed"
SILENCE_ACTION = "trailseal.source.silent"
STOPPED_ACTION = "trailseal.detection.stopped"
LAGGING_ACTION = "trailseal.detection.lagging"
ENGINE_ACTOR = {"id": "trailseal-watch", "type": "system"}
ZERO_CHAIN = bytes(32)
BATCH = 10_000  # entries per transaction (and, catching up, per progress entry)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(stamp: Any) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return 0.0


class _Memory:
    """First-seen memory in front of the store: read once per user, written with the batch."""

    def __init__(self, store: DetectionStore) -> None:
        self.store = store
        self.cache: dict[tuple[str, str], set[str]] = {}
        self.pending: list[tuple[str, str, str]] = []

    def seen(self, actor: str, kind: str) -> set[str]:
        key = (actor, kind)
        if key not in self.cache:
            self.cache[key] = self.store.seen(actor, kind)
        return self.cache[key]

    def remember(self, actor: str, kind: str, value: str) -> None:
        self.seen(actor, kind).add(value)
        self.pending.append((actor, kind, value))

    def flush(self) -> None:
        """Write what the batch learned (inside the batch's transaction)."""
        self.store.remember_many(self.pending)
        self.pending = []


class Engine:
    """Runs a rule pack over a ledger; :meth:`step` processes the next batch."""

    def __init__(  # noqa: PLR0913 - what it reads, where it keeps state, and two options
        self,
        ledger: Ledger,
        store: DetectionStore,
        pack: RulePack,
        config: DetectionConfig,
        *,
        on_alert: Callable[[], None] | None = None,
        record_alerts: bool = True,
    ) -> None:
        self.ledger, self.store, self.pack, self.config = ledger, store, pack, config
        self.context = Context(
            _Memory(store),
            roster=config.roster,
            geography=config.geography,
            ownership=config.ownership,
        )
        self.rules: list[Rule] = list(pack.rules.values())
        self.plan = FieldPlan(pack.fields())
        self._by_action: dict[str, list[Rule]] = {}  # the rules an action can match
        self.alerting = pack.alerting_rules()
        self.correlators: dict[str, Correlator] = {}
        self.feeds: dict[str, list[Correlator]] = {}
        self._load_state()
        self.instance: str = store.get_state("instance") or secrets.token_hex(8)
        self.sinks = [sink.name for sink in config.sinks]
        self.on_alert = on_alert
        self.record_alerts = record_alerts  # False: alerts are stored but not written to the log
        self.processed = 0
        self.foreign = 0  # entries of this batch that were not the engine's own records
        self._idle_checked = 0.0  # when an idle step last checked for silence
        self.latest = 0.0  # the latest event time seen, for pruning correlation state
        self.size = 0  # the log's size when the last step began
        self.behind_since: float | None = None  # since when every step left entries waiting
        self.lag_reported = False

    def _load_state(self, correlations: dict[str, Any] | None = None) -> None:
        """The engine's state as last committed (or, for a replay, correlations afresh)."""
        store = self.store
        saved = store.get_state("correlations", {}) if correlations is None else correlations
        self.correlators = {
            name: Correlator(c, saved.get(name)) for name, c in self.pack.correlations.items()
        }
        self.feeds = {}
        for correlator in self.correlators.values():
            for rule in dict.fromkeys(correlator.c.rules):
                self.feeds.setdefault(rule, []).append(correlator)
        self.cursor: int = store.get_state("cursor", 0)
        recorded = store.get_state("recorded")  # where the last progress record ended
        # None: state from before progress was recorded; the first step records it all.
        self.unrecorded_legacy = recorded is None and self.cursor > 0
        self.recorded: int = recorded or 0
        self.committed = self.cursor  # the cursor as stored: a step checks nobody moved it
        self.chain = bytes.fromhex(store.get_state("chain", ZERO_CHAIN.hex()))
        self.checkpoint_size: int = store.get_state("checkpoint_size", 0)
        self.last_seen: dict[str, float] = store.get_state("last_seen", {})
        self.silent: dict[str, bool] = store.get_state("silent", {})
        self.memory = _Memory(store)  # forget first-seen values a failed batch noted
        self.context.memory = self.memory

    # -- the loop ------------------------------------------------------------------

    def replay_from(self, index: int) -> None:
        """Start over at ``index`` (back-testing a rule): state and memory of correlations
        restart empty; alerts already raised stay, and merge with re-raised ones."""
        self._load_state(correlations={})
        self.cursor = max(0, index)
        self.chain = self.ledger.get(index - 1).chain_hash if index > 0 else ZERO_CHAIN

    def step(self, limit: int = BATCH, now: float | None = None) -> int:
        """Process up to ``limit`` new entries; returns how many."""
        start = self.cursor
        self.size = self.ledger.size()
        end = min(self.size, start + limit)
        if end == start and not self._idle_work_due(now):
            return 0  # nothing new: no transaction, no write
        new_alerts: list[int] = []
        try:
            with self.store.transaction():
                # Another engine on this data directory (a `watch` beside `serve --watch`)
                # may have taken the batch: then take up its state instead of repeating it.
                moved = self.store.get_state("cursor", 0) != self.committed
                if not moved:
                    self.store.put_state("instance", self.instance)
                    self.foreign = 0
                    for row, detail in self.ledger.stored(start, end):
                        self._entry(row, detail, new_alerts)
                    self.cursor = end
                    self._check_checkpoint(new_alerts)
                    self._check_silence(now, new_alerts)
                    self._check_lag(end < self.size, new_alerts)
                    if self.record_alerts and (self.foreign or self.unrecorded_legacy):
                        self._record_progress(self.recorded)
                        self.recorded = self.cursor
                        self.unrecorded_legacy = False
                    self._save()
        except BaseException:
            self._load_state()  # the batch rolled back: so does what the engine holds
            raise
        if moved:
            # Another engine's batch, or an edit of the database while this one runs:
            # either way, take the stored state only as far as the log vouches for it.
            self._load_state()
            self.reconcile()
            return 0
        if self.record_alerts:
            self._log()
        self.processed += end - start
        if new_alerts and self.on_alert:
            self.on_alert()
        return end - start

    def _idle_work_due(self, now: float | None) -> bool:
        """With no new entries, a step only checks silence: when asked to (``now``), or
        once a second when sources are watched for silence."""
        if now is not None:
            return True
        if not self.config.silence:
            return False
        clock = time.monotonic()
        if clock - self._idle_checked < 1.0:
            return False
        self._idle_checked = clock
        return True

    def reconcile(self) -> list[str]:
        """Check the working copy against the log before following it, and repair it from
        the log: alerts deleted or edited in the database are put back as the log says,
        rows the log never recorded are removed, and entries the position skipped are
        evaluated after all. Each disagreement raises the integrity rule; returns them."""
        if not self.record_alerts:
            return []
        self._log()  # changes a crash left unwritten are not disagreements
        found = check_state(self.ledger, self.store, self.cursor, full=False)
        if not found.problems:
            return []
        new_alerts: list[int] = []
        with self.store.transaction():
            for alert in found.restore:
                self.store.restore(alert)
            for alert_id in found.forget:
                self.store.forget(alert_id)
            if found.resume is not None:
                self.cursor = self.recorded = found.resume
                self.chain = (
                    self.ledger.get(found.resume - 1).chain_hash if found.resume else ZERO_CHAIN
                )
            for problem in found.problems:
                self._integrity(self.cursor, f"detection state: {problem}", new_alerts)
            self._save()
        self._log()
        if new_alerts and self.on_alert:
            self.on_alert()
        return found.problems

    def run_once(self) -> int:
        """Everything up to the log's current end."""
        self.reconcile()
        total = 0
        while done := self.step():
            total += done
        self.step(now=time.time())  # silence and checkpoints, even when nothing new arrived
        return total

    def follow(
        self,
        stop: Callable[[], bool],
        poll: float = 0.1,
        settle: float = 0.25,
        observe: Callable[[Engine], None] | None = None,
    ) -> None:
        """Keep up with the log until ``stop()``; checks for new entries every ``poll`` s.
        After a step that caught up, the next waits ``settle`` s, so that a trickle of
        events makes at most four progress records a second; ``observe`` hears every step."""
        self.reconcile()
        while not stop():
            done = self.step()
            if observe is not None:
                observe(self)
            pause = 0.0 if done >= BATCH else settle if done else poll
            deadline = time.monotonic() + pause
            while not stop() and time.monotonic() < deadline:
                time.sleep(min(poll, pause))

    # -- one entry -------------------------------------------------------------------

    def _entry(self, row: Any, detail_row: Any, new_alerts: list[int]) -> None:
        index = row.index
        if not isinstance(row.entry, bytes) or not isinstance(row.leaf_hash, bytes):
            self._integrity(index, "the entry is stored as text, not as its bytes", new_alerts)
            return
        if (
            leaf_hash(row.entry) != row.leaf_hash
            or chain_hash(self.chain, row.leaf_hash) != row.chain_hash
        ):
            self._integrity(index, "the entry's hashes do not recompute", new_alerts)
            self.chain = row.chain_hash  # go on from what is stored; one alert per break
            return
        self.chain = row.chain_hash
        entry = orjson.loads(row.entry)
        detail = (
            orjson.loads(detail_row.detail)
            if detail_row is not None and detail_row.detail is not None
            else None
        )
        fields = self.plan.fields(index, entry, detail)
        action = fields.get("action")
        if not isinstance(action, str) or own_record(action):
            return  # the engine's own records
        self.foreign += 1
        if not trusted(action, entry.get("submitter")):
            # Claims to be the log's own record but the log did not submit it: believing
            # it would let a writer open (and so silence) the log's own alerts.
            logger.warning(
                "trailseal: entry %d claims %s but was not written by the log", index, action
            )
            return
        source = fields.get("source.service") or fields.get("actor.tenant")
        if source:
            self.last_seen[str(source)] = _seconds(entry.get("received_at"))
        fields["tenant"] = tenant_of(fields.get("resource.tenant"), fields.get("actor.tenant"))
        self.context.enrich(fields)
        stamp = str(fields.get("time") or fields.get("received_at"))
        seconds = _seconds(stamp)
        self.latest = max(self.latest, seconds)
        self.evaluate(fields, new_alerts, stamp, seconds)

    def evaluate(
        self,
        fields: Fields,
        new_alerts: list[int],
        stamp: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Run every rule on one entry's (enriched) fields, at its event time."""
        if stamp is None:
            stamp = str(fields.get("time") or fields.get("received_at") or _now())
        if seconds is None:
            seconds = _seconds(stamp)
        index = int(fields.get("index", -1))
        action = fields.get("action")
        candidates = self._by_action.get(action) if isinstance(action, str) else None
        if candidates is None:
            candidates = [r for r in self.rules if r.gate is None or r.gate({"action": action})]
            if isinstance(action, str) and len(self._by_action) < 10_000:
                self._by_action[action] = candidates
        for rule in candidates:
            if not rule.predicate(fields):
                continue
            if rule.name in self.alerting:
                group = group_key(fields, rule.group_by)
                tenant = fields.get("tenant")
                single = Firing(None, group, [index], stamp, stamp, tenant and str(tenant))
                self._raise(rule, single, new_alerts)
            for correlator in self.feeds.get(rule.name, ()):
                firing = correlator.feed(rule.name, fields, seconds, stamp, index)
                if firing is not None:
                    self._raise(correlator.c, firing, new_alerts)

    def _raise(self, source: Rule | Correlation, firing: Firing, new_alerts: list[int]) -> None:
        alert_id, new = self.store.raise_alert(
            rule=source.name,
            title=source.title,
            severity=source.level,
            group=firing.group,
            tenant=firing.tenant,
            evidence=firing.evidence,
            first=firing.first,
            last=firing.last,
            dedup_seconds=source.dedup_seconds,
            now=_now(),
            sinks=self.sinks,
        )
        if new:
            new_alerts.append(alert_id)

    # -- integrity and silence ------------------------------------------------------------

    def _integrity(self, index: int, why: str, new_alerts: list[int]) -> None:
        logger.error("trailseal: integrity failure at entry %d: %s", index, why)
        self.evaluate(
            {"action": INTEGRITY_ACTION, "index": index, "outcome.reason": why, "time": _now()},
            new_alerts,
        )

    def _check_checkpoint(self, new_alerts: list[int]) -> None:
        """The newest checkpoint: its signature, and its consistency with the last one
        this engine checked."""
        try:
            note = self.ledger.checkpoint()
        except TrailsealError:
            return  # an empty log has none
        try:
            checkpoint = Checkpoint.open(note, self.ledger.verifier)
            if checkpoint.size <= self.checkpoint_size:
                return
            if self.checkpoint_size:
                proof = self.ledger.prove_consistency(self.checkpoint_size, checkpoint.size)
                verify_consistency(
                    self.checkpoint_size,
                    checkpoint.size,
                    self.ledger.root(self.checkpoint_size),
                    checkpoint.root,
                    proof.proof,
                )
            elif self.ledger.root(checkpoint.size) != checkpoint.root:
                self._integrity(self.cursor, "checkpoint: its root is not the log's", new_alerts)
                return
        except TrailsealError as exc:
            self._integrity(self.cursor, f"checkpoint: {exc}", new_alerts)
            return
        self.checkpoint_size = checkpoint.size

    def _check_lag(self, behind: bool, new_alerts: list[int]) -> None:
        """Raise the lagging rule once when the engine has stayed behind the log for longer
        than ``max_lag``; catching up ends the episode."""
        if not behind:
            self.behind_since, self.lag_reported = None, False
            return
        clock = time.time()
        if self.behind_since is None:
            self.behind_since = clock
        waited = clock - self.behind_since
        if waited > self.config.max_lag and not self.lag_reported:
            self.lag_reported = True
            self.evaluate(
                {
                    "action": LAGGING_ACTION,
                    "outcome.reason": f"{self.size - self.cursor:,} entries waiting after "
                    f"{waited:.0f} s behind the log",
                    "time": _now(),
                    "index": self.cursor - 1,
                },
                new_alerts,
            )

    def report_outage(self, seconds: float, error: str) -> None:
        """After detection could not run for ``seconds`` (``error`` the last reason), raise
        the stopped rule when that was longer than ``max_lag``."""
        if seconds <= self.config.max_lag:
            return
        new_alerts: list[int] = []
        with self.store.transaction():
            self.evaluate(
                {
                    "action": STOPPED_ACTION,
                    "outcome.reason": f"detection could not run for {seconds:.0f} s: {error}",
                    "time": _now(),
                    "index": self.cursor - 1,
                },
                new_alerts,
            )
        if self.record_alerts:
            self._log()
        if new_alerts and self.on_alert:
            self.on_alert()

    def _check_silence(self, now: float | None, new_alerts: list[int]) -> None:
        clock = now if now is not None else time.time()
        for rule in self.config.silence:
            last = self.last_seen.get(rule.source)
            quiet = last is not None and clock - last > rule.expected
            if quiet and not self.silent.get(rule.source):
                self.evaluate(
                    {
                        "action": SILENCE_ACTION,
                        "source.service": rule.source,
                        "time": _now(),
                        "index": self.cursor - 1,
                    },
                    new_alerts,
                )
            self.silent[rule.source] = quiet

    # -- state -------------------------------------------------------------------------

    def _save(self) -> None:
        for correlator in self.correlators.values():
            correlator.prune(self.latest)
        self.memory.flush()
        put = self.store.put_state
        put("cursor", self.cursor)
        put("recorded", self.recorded)
        self.committed = self.cursor
        put("chain", self.chain.hex())
        put("checkpoint_size", self.checkpoint_size)
        put("correlations", {name: c.state() for name, c in self.correlators.items()})
        put("last_seen", self.last_seen)
        put("silent", self.silent)

    def _log(self) -> None:
        """Append the alerts changed since they were last written into the log (this
        batch's, and any a crash left behind), in one append: ``alert.raised`` for a new
        one, ``alert.updated`` after a merge, each with the whole alert as its detail.
        Their ids name the version; a version the log already holds (the engine died
        after appending it and before marking it written) is only marked."""
        unlogged = self.store.unlogged()
        if not unlogged:
            return
        ids = {alert.id: _alert_event_id(self.instance, alert) for alert in unlogged}
        written = self.ledger.stored_ids(list(ids.values()))
        fresh = [alert for alert in unlogged if ids[alert.id] not in written]
        if fresh:
            self.ledger.append(
                [
                    event_from_mapping(
                        {
                            "id": ids[alert.id],
                            "time": _now(),
                            "actor": ENGINE_ACTOR,
                            "action": "alert.raised" if alert.version == 1 else "alert.updated",
                            "resource": {"type": "alert", "id": str(alert.id)},
                            "outcome": {"result": "success"},
                            "context": {"labels": {"rule": alert.rule, "severity": alert.severity}},
                            "detail": alert.to_json(),
                        }
                    )
                    for alert in fresh
                ],
                LOG_SUBMITTER,
            )
        with self.store.transaction():
            for alert in unlogged:
                self.store.mark_logged(alert.id, alert.version)

    def _record_progress(self, start: int) -> None:
        """Write into the log that entries ``start`` to the cursor were evaluated, ending on
        the chain hash the engine followed: inside the batch's transaction, before it
        commits, so the log never lacks a range the database says is done (a crash
        between the two makes the range appear twice, never not at all)."""
        self.ledger.append(
            [
                event_from_mapping(
                    {
                        "id": f"detection:{self.instance}:{start}-{self.cursor}:"
                        + secrets.token_hex(4),
                        "time": _now(),
                        "actor": ENGINE_ACTOR,
                        "action": PROGRESS_ACTION,
                        "resource": {"type": "detection", "id": self.instance},
                        "outcome": {"result": "success"},
                        "context": {
                            "labels": {
                                "from": str(start),
                                "to": str(self.cursor),
                                "chain": self.chain.hex(),
                                "instance": self.instance,
                            }
                        },
                    }
                )
            ],
            LOG_SUBMITTER,
        )


@dataclass(frozen=True)
class StateCheck:
    """How the detection database disagrees with the log, and what puts it right."""

    problems: list[str]
    restore: list[Alert]  # alerts to put back as the log has them
    forget: list[int]  # alert rows the log never recorded
    resume: int | None  # where evaluation must resume: the first entry nobody evaluated


def _records(ledger: Ledger, action: str, page_size: int = 1000) -> Iterator[Logged]:
    """The log's own records of ``action``, in index order, read a page at a time."""
    after = -1
    while True:
        page = ledger.search(SearchFilter(action=action, after_index=after, limit=page_size))
        for view in page:
            found = logged(view.index, view.entry, view.detail)
            if found is not None:
                yield found
        if len(page) < page_size:
            return
        after = page[-1].index


def _newest_span(ledger: Ledger) -> list[Span]:
    """The range of the newest progress record, if any."""
    page = ledger.search(SearchFilter(action=PROGRESS_ACTION, newest_first=True, limit=100))
    for view in page:
        found = logged(view.index, view.entry, view.detail)
        if found is not None:
            return spans([found])
    return []


def check_state(
    ledger: Ledger, store: DetectionStore, cursor: int | None = None, *, full: bool = True
) -> StateCheck:
    """Compare the detection database with the log's own records of detection: the alerts
    their entries describe, and the ranges the engine recorded as evaluated up to the
    database's position (``cursor``, else as stored). ``full`` checks every recorded
    range; otherwise only that the position does not run past the newest one (what a
    start needs: earlier starts checked the rest, and `alerts verify` checks it all)."""
    instance = store.get_state("instance") or ""
    position = store.get_state("cursor", 0) if cursor is None else cursor
    alert_records = sorted(
        (found for action in ALERT_ACTIONS for found in _records(ledger, action)),
        key=lambda r: r.index,
    )
    alerts = compare({a.id: a for a in store.alerts()}, project(alert_records, instance))
    problems = alerts.problems
    resume = None
    recorded = spans(_records(ledger, PROGRESS_ACTION)) if full else _newest_span(ledger)
    if not recorded and store.get_state("recorded") is None:
        recorded = [Span(0, position, "")]  # state from before progress was recorded
    if not full:  # the newest range vouches for everything before it
        recorded = [Span(0, recorded[-1].end if recorded else 0, "")]
    for start, end in gaps(recorded, position):
        first = _first_foreign(ledger, start, end)
        if first is not None:
            problems.append(
                f"entries {first} to {end - 1} were never evaluated: the detection position "
                "moved past them"
            )
            resume = first if resume is None else min(resume, first)
    return StateCheck(problems, alerts.restore, alerts.forget, resume)


def _first_foreign(ledger: Ledger, start: int, end: int) -> int | None:
    """The first entry in ``[start, end)`` that is not the engine's own record (those are
    never evaluated, so a range of only them needs no progress record)."""
    for row, _detail in ledger.stored(start, end):
        try:
            action = orjson.loads(row.entry)["event"]["action"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return int(row.index)
        if not own_record(action):
            return int(row.index)
    return None


def _alert_event_id(instance: str, alert: Alert) -> str:
    """The id of the entry that writes one version of an alert into the log."""
    return f"alert:{instance}:{alert.id}:" + (
        "raised" if alert.version == 1 else f"v{alert.version}"
    )


# What a change of an alert writes: acknowledged is "under review", resolved is "closed"
# with a disposition; a note changes nothing but is an entry like the rest.
STATUS_ACTIONS = {
    "acknowledged": "alert.acknowledged",
    "resolved": "alert.resolved",
    "noted": "alert.noted",
}


def record_status(  # noqa: PLR0913 - the change and who made it, by name
    ledger: Ledger,
    store: DetectionStore,
    alert_id: int,
    *,
    status: str,
    reason: str | None,
    actor: str,
    disposition: str | None = None,
) -> dict[str, Any]:
    """Acknowledge, resolve or annotate an alert, and write that into the log: the entry
    first, so that when it cannot be written nothing changes (StoreUnavailableError)."""
    alert = store.alert(alert_id)  # NotFoundError names a missing one
    instance = store.get_state("instance") or "local"
    action = STATUS_ACTIONS[status]
    labels = {"rule": alert.rule} | ({"disposition": disposition} if disposition else {})
    try:
        _append_status(ledger, alert, instance, action, status, reason, actor, labels)
    except (StorageError, ConfigError) as exc:
        raise StoreUnavailableError(
            f"the {action} entry cannot be written, so alert {alert_id} is unchanged: "
            f"{exc.diagnostics()}"
        ) from None
    if status == "noted":
        return alert.to_json()
    with store.transaction():
        return store.set_status(alert_id, status, reason, disposition).to_json()


def _append_status(  # noqa: PLR0913, PLR0917 - the change, who made it and why
    ledger: Ledger,
    alert: Alert,
    instance: str,
    action: str,
    status: str,
    reason: str | None,
    actor: str,
    labels: dict[str, str],
) -> None:
    alert_id = alert.id
    ledger.append(
        [
            event_from_mapping(
                {
                    "id": f"alert:{instance}:{alert_id}:{status}:{secrets.token_hex(4)}",
                    "time": _now(),
                    "actor": {"id": actor, "type": "user"},
                    "action": action,
                    "resource": {"type": "alert", "id": str(alert_id)},
                    "outcome": {"result": "success"} | ({"reason": reason} if reason else {}),
                    "context": {"labels": labels},
                }
            )
        ],
        LOG_SUBMITTER,
    )
