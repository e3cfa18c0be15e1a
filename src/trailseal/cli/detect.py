"""`trailseal rules`, `trailseal watch` and `trailseal alerts`: detection from the command line."""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson

from trailseal.app import App
from trailseal.app.alerts import DISPOSITIONS
from trailseal.app.deployment import Deployment
from trailseal.cli._common import chosen_log, data_option, host, key_option
from trailseal.cli._output import emit_json, emit_rows, info, output_options
from trailseal.config import DEFAULT_LOG, resolve_data_dir
from trailseal.errors import BusyError, ConfigError, EventError
from trailseal.events import EventLimits, parse_event
from trailseal.ledger import Ledger

rules_option = click.option(
    "--rules",
    "rules",
    multiple=True,
    help="A rule folder or file; repeat for more ('builtin' is the shipped pack) "
    "[default: as DATA/detection.yaml says, else builtin].",
)
context_option = click.option(
    "--context",
    "context",
    type=click.Path(dir_okay=False, exists=True),
    help="A YAML file naming the roster, geography and ownership files "
    "[default: the context in DATA/detection.yaml].",
)

EXIT_PROBLEMS = 1
EXIT_DAMAGE = 3  # as `trailseal verify`: what is stored disagrees with the log

if TYPE_CHECKING:
    from trailseal.detect.config import DetectionConfig
    from trailseal.detect.engine import Engine
    from trailseal.detect.rules import RulePack
    from trailseal.detect.sinks import Dispatcher
    from trailseal.detect.watcher import Lease

# Detection modules (pySigma, YAML) are imported inside the commands that use them,
# so that every other command starts as fast as before.


def _config(data: str | None, rules: tuple[str, ...], context: str | None) -> DetectionConfig:
    from trailseal.detect.config import load_config  # noqa: PLC0415 - see above

    data_dir = resolve_data_dir(data)
    if data is None and not data_dir.exists() and (rules or context):
        data_dir = Path.cwd()  # linting or testing rules needs no log
    return load_config(data_dir, list(rules) or None, context)


def _pack(config: DetectionConfig, strict: bool) -> RulePack:
    from trailseal.detect.rules import load  # noqa: PLC0415 - see above

    pack = load(config.rules)
    for problem in pack.problems:
        info(f"{'error' if strict else 'skipped'}: {problem}")
    return pack


@click.group()
def rules() -> None:
    """Check and try out detection rules (Sigma form)."""


@rules.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--summary",
    is_flag=True,
    help="Print how many rules load and the problems grouped by reason, as JSON (to "
    "measure a published collection such as a SigmaHQ checkout).",
)
@data_option
def lint(paths: tuple[str, ...], summary: bool, data: str | None) -> None:
    """Check rule files; every problem is listed with its file and line (exit 1 if any)."""
    config = _config(data, paths, None)
    pack = _pack(config, strict=not summary)
    info(f"{len(pack.rules)} rules and {len(pack.correlations)} correlations load")
    if summary:
        emit_json(_summary(pack))
    if pack.problems:
        sys.exit(EXIT_PROBLEMS)


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\b\d+\b")


def _summary(pack: RulePack) -> dict[str, Any]:
    """How many rules load, and the problems grouped by their reason (quoted names and
    numbers folded, so one reason counts once however many rules it stops)."""
    reasons: dict[str, int] = {}
    for problem in pack.problems:
        reason = _QUOTED.sub("…", problem.message)[:120]
        reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "rules": len(pack.rules),
        "correlations": len(pack.correlations),
        "problems": len(pack.problems),
        "reasons": dict(sorted(reasons.items(), key=lambda item: -item[1])),
    }


@rules.command("test")
@click.argument("rule")
@click.option(
    "--events",
    "events",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="JSON Lines: one event a line.",
)
@rules_option
@context_option
@data_option
def test_rule(
    rule: str, events: str, rules: tuple[str, ...], context: str | None, data: str | None
) -> None:
    """Show which events RULE matches, and which of its selections did."""
    from trailseal.detect.context import Context, TransientMemory  # noqa: PLC0415 - see above
    from trailseal.detect.fields import entry_fields  # noqa: PLC0415

    config = _config(data, rules, context)
    pack = _pack(config, strict=False)
    found = pack.rules.get(rule)
    if found is None:
        raise ConfigError(f"no rule named {rule!r}; the pack has: {', '.join(sorted(pack.rules))}")
    credit = "; ".join(
        part
        for part in (
            f"author: {found.author}" if found.author else "",
            f"reference: {found.references[0]}" if found.references else "",
        )
        if part
    )
    info(f"{rule}: {found.title}" + (f" ({credit})" if credit else ""))
    memory = TransientMemory()  # first-seen within the file only
    enrich = Context(
        memory, roster=config.roster, geography=config.geography, ownership=config.ownership
    )
    matched = 0
    for number, line in enumerate(Path(events).read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # no size bound: an imported record (CloudTrail's can pass 64 KiB) is tried whole
            event = parse_event(line, EventLimits(max_bytes=max(len(line), 256)))
        except EventError as exc:
            raise EventError(exc.field, f"{events}:{number}: {exc.message}") from None
        raw = orjson.loads(line)
        fields = entry_fields(number, {"event": raw}, raw.get("detail"))
        enrich.enrich(fields)
        hit = found.predicate(fields)
        matched += hit
        why = ", ".join(f"{name}={'yes' if part(fields) else 'no'}" for name, part in found.parts)
        click.echo(f"{number}: {'MATCH' if hit else 'no match'}  {event.action}  [{why}]")
    info(f"{matched} of the events match {rule}")


@click.command()
@click.option("--from", "start", type=click.IntRange(min=0), help="Replay from this index.")
@click.option("--once", is_flag=True, help="Process up to the current end, then exit.")
@rules_option
@context_option
@data_option
@key_option
def watch(
    start: int | None,
    once: bool,
    rules: tuple[str, ...],
    context: str | None,
    data: str | None,
    key: str | None,
) -> None:
    """Follow the log: evaluate every new entry, raise alerts, send them to the sinks."""
    from trailseal.detect.config import load_config  # noqa: PLC0415 - see above
    from trailseal.detect.engine import Engine  # noqa: PLC0415
    from trailseal.detect.sinks import Dispatcher  # noqa: PLC0415
    from trailseal.detect.store import open_store  # noqa: PLC0415
    from trailseal.detect.watcher import detection_lease  # noqa: PLC0415

    with Ledger.open(data, key_path=key) as ledger:
        data_dir = ledger.settings.data_dir
        config = load_config(data_dir, list(rules) or None, context)
        pack = _pack(config, strict=False)
        lease = detection_lease(ledger.settings.store, data_dir)
        _hold(lease, wait=not once)
        store = open_store(data_dir)
        dispatcher = Dispatcher(store.reopen, config.sinks)
        engine = Engine(ledger, store, pack, config, on_alert=dispatcher.wake.set)
        if start is not None:
            engine.replay_from(start)
        info(
            f"watching {data_dir} from entry {engine.cursor} with {len(pack.rules)} rules and "
            f"{len(pack.correlations)} correlations"
        )
        try:
            if once:
                engine.run_once()
                _drain(dispatcher)
            else:
                _follow(engine, dispatcher, data_dir, key, pack, config, lease)
        finally:
            store.close()
            lease.release()
        with closing(open_store(data_dir)) as again:
            open_alerts = len(again.alerts(status="open"))
        info(f"processed {engine.processed:,} entries; {open_alerts} open alerts")


def _hold(lease: Lease, *, wait: bool) -> None:
    """Take the detection lease before touching the detection state: another process
    (`serve --watch`, another `watch`) running detection on this log holds it. Following,
    wait for it; once, refuse."""
    if lease.acquire():
        return
    if not wait:
        raise BusyError(
            "detection runs in another process on this log (serve --watch or watch); "
            "its lease is held, so this one would evaluate entries twice"
        )
    info("another process runs detection on this log; standing by until its lease is free")
    while not lease.acquire():
        time.sleep(2)


def _drain(dispatcher: Dispatcher, budget: float = 30.0) -> None:
    """Deliver what is due now; what fails stays queued for the next run."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline and dispatcher.store.due(time.time()):
        if not dispatcher.deliver_due():
            break
    dispatcher.store.close()


def _follow(
    engine: Engine,
    dispatcher: Dispatcher,
    data_dir: Path,
    key: str | None,
    pack: RulePack,
    config: DetectionConfig,
    lease: Lease,
) -> None:
    """Follow under the supervisor: a failure restarts the engine from its last batch."""
    from trailseal.detect.watcher import Health, running, supervise  # noqa: PLC0415

    halt = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: halt.set())
    first = [engine]

    @contextmanager
    def start() -> Iterator[Engine]:
        if first:
            yield first.pop()
        else:
            with running(data_dir, key, pack, config) as fresh:
                yield fresh

    dispatcher.start()
    try:
        supervise(start, halt, Health(max_lag=config.max_lag), lease)
    except KeyboardInterrupt:
        pass
    finally:
        dispatcher.stop()
        dispatcher.join(timeout=10)


@click.group()
def alerts() -> None:
    """List, acknowledge and resolve alerts; see and resend failed deliveries."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["open", "acknowledged", "resolved"]))
@click.option("--rule", help="Only this rule's alerts.")
@data_option
@key_option
@click.option("--all-logs", is_flag=True, help="Every log's alerts (a log column is added).")
@output_options
def list_alerts(
    status: str | None,
    rule: str | None,
    data: str | None,
    key: str | None,
    all_logs: bool,
    fmt: str | None,
) -> None:
    """Alerts, oldest first, with the entry indexes that are their evidence (recorded as
    alert.read)."""
    columns: list[tuple[str, Any]] = []
    if all_logs:
        if chosen_log() != DEFAULT_LOG:
            raise click.UsageError("--all-logs lists every log's alerts; leave out --log")
        with Deployment.open(data, key_path=key) as deployment:
            found = deployment.alerts(host(), status=status, rule=rule)
        rows = [{"log": name, **alert.to_json()} for name, alert in found]
        columns.append(("log", lambda r: r["log"]))
    else:
        with App.open(data, key_path=key) as app:
            rows = [a.to_json() for a in app.alerts.list(host(), status=status, rule=rule)]
    emit_rows(
        rows,
        fmt,
        [
            *columns,
            ("id", lambda r: r["id"]),
            ("rule", lambda r: r["rule"]),
            ("severity", lambda r: r["severity"]),
            ("group", lambda r: r["group"]),
            ("evidence", lambda r: _evidence(r["evidence"])),
            ("first seen", lambda r: r["first_seen"]),
            ("status", lambda r: r["status"]),
        ],
    )


def _evidence(indexes: list[int]) -> str:
    shown = ", ".join(map(str, indexes[:6]))
    return shown + (f" (+{len(indexes) - 6})" if len(indexes) > 6 else "")


def _change(
    data: str | None,
    key: str | None,
    alert_id: int,
    status: str,
    reason: str | None,
    disposition: str | None = None,
) -> None:
    with App.open(data, key_path=key) as app:
        if status == "noted":
            done = app.alerts.note(host(), alert_id, reason or "")
        else:
            done = app.alerts.change(host(), alert_id, status, reason, disposition)
    info(f"alert {alert_id} {status}; the change is an entry in the log")
    click.echo(orjson.dumps(done).decode())


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--note", help="Why, or who is looking into it.")
@data_option
@key_option
def ack(alert_id: int, note: str | None, data: str | None, key: str | None) -> None:
    """Acknowledge an alert: it is under review (someone is on it)."""
    _change(data, key, alert_id, "acknowledged", note)


@alerts.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--reason", required=True, help="What was found, e.g. 'authorised by ticket SEC-88'.")
@click.option(
    "--disposition",
    type=click.Choice(DISPOSITIONS),
    help="How it is closed: explained, false-positive, or confirmed (a violation).",
)
@data_option
@key_option
def resolve(
    alert_id: int, reason: str, disposition: str | None, data: str | None, key: str | None
) -> None:
    """Resolve (close) an alert, with the reason and how it is closed."""
    if not reason.strip():
        raise click.UsageError("--reason must say something")
    _change(data, key, alert_id, "resolved", reason, disposition)


@alerts.command("note")
@click.argument("alert_id", type=int)
@click.argument("text")
@data_option
@key_option
def note(alert_id: int, text: str, data: str | None, key: str | None) -> None:
    """Add a note to an alert's triage without changing its state."""
    if not text.strip():
        raise click.UsageError("the note must say something")
    _change(data, key, alert_id, "noted", text)


@alerts.command("verify")
@data_option
@key_option
def verify_alerts(data: str | None, key: str | None) -> None:
    """Check the alerts and the detection position against the log's own records of them
    (alert.* and trailseal.detection.progress entries); exit 3 naming each disagreement.
    `trailseal watch` (and `serve --watch`) repairs them from the log when it starts."""
    with App.open(data, key_path=key) as app:
        found = app.alerts.check(host())
    if not found.problems:
        info("alerts and detection position agree with the log")
        return
    for problem in found.problems:
        click.echo(f"detection state: {problem}", err=True)
    info(f"{len(found.problems)} disagreements; `trailseal watch` repairs them from the log")
    sys.exit(EXIT_DAMAGE)


@alerts.command("dead")
@data_option
@key_option
@output_options
def dead(data: str | None, key: str | None, fmt: str | None) -> None:
    """Deliveries that kept failing until they were given up (dead letters; recorded as
    alert.read)."""
    with App.open(data, key_path=key) as app:
        rows = app.alerts.dead(host())
    keys = ("delivery", "alert", "sink", "attempts", "last_error")
    emit_rows(rows, fmt, [(key, _column(key)) for key in keys])


def _column(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row[key]


@alerts.command("redeliver")
@data_option
@key_option
def redeliver(data: str | None, key: str | None) -> None:
    """Queue every dead letter again; `trailseal watch` sends them (recorded as
    alert.redelivered)."""
    with App.open(data, key_path=key) as app:
        count = app.alerts.redeliver(host())
    info(f"{count} deliveries queued again")
