"""`trailseal demo`: a month in a small hospital, audited end to end."""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trailseal.cli._output import info
from trailseal.errors import ConfigError
from trailseal.layout import DataLayout
from trailseal.ledger import Ledger, VerificationReport

if TYPE_CHECKING:
    from trailseal.detect.store import Alert


def _candidates(given: str | None) -> Iterator[Path]:
    if given:
        yield Path(given)
        return
    if os.environ.get("TRAILSEAL_EXAMPLES"):
        yield Path(os.environ["TRAILSEAL_EXAMPLES"])
    yield Path(sysconfig.get_path("data")) / "share" / "trailseal" / "examples"  # a wheel install
    yield Path.cwd() / "examples"
    yield Path(__file__).resolve().parents[3] / "examples"  # a source checkout


def load_hospital(given: str | None) -> Any:
    """Import the demo hospital (``examples/ehr``): it is an application of trailseal's
    public API, so it lives beside the package rather than inside it."""
    for folder in _candidates(given):
        if (folder / "ehr" / "demo.py").is_file():
            sys.path.insert(0, str(folder))
            return importlib.import_module("ehr.demo")
    raise ConfigError(
        "cannot find the demo hospital (examples/ehr); run from a trailseal checkout, "
        "or pass --examples DIR (the folder that holds ehr/)"
    )


@click.command()
@click.option(
    "--data",
    default="trailseal-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="A new or empty folder for the log, the hospital's database and its context files.",
)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 30))
@click.option(
    "--examples",
    type=click.Path(exists=True, file_okay=False),
    help="The folder holding ehr/ [default: the installed copy, or ./examples].",
)
def demo(data: str, days: int, examples: str | None) -> None:
    """Run a demo hospital for a simulated month against trailseal, then show where to look.

    Starts `trailseal serve` on the embedded default (SQLite) in DATA/log, runs a
    small EHR (FastAPI + SQLAlchemy, instrumented with trailseal.capture) and a
    month of staff traffic with four planted incidents, verifies the log and
    prints the commands that show what it captured.
    """
    from trailseal.testing import ServiceProcess  # noqa: PLC0415 - only the demo needs it

    root = Path(data)
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} is not empty; pass --data NEW_DIR, or remove it first")
    hospital = load_hospital(examples)
    log_dir = root / "log"
    info(f"starting trailseal on the embedded default (SQLite) in {log_dir} ...")
    service = ServiceProcess.boot(log_dir, "--rate", "100000", origin="demo.hospital/audit")
    try:
        token = service.principal("ehr", "writer")
        info(f"running the hospital for {days} simulated days ...")
        report = hospital.run(service.url, token, root / "ehr", days=days, progress=info)
    finally:
        service.stop()
    roster, geo = report.context
    DataLayout(log_dir).detection_config.write_text(
        "# written by trailseal demo: the hospital's context and an alert file\n"
        "rules: [builtin]\n"
        f"context: {{roster: {roster.resolve()}, geography: {geo.resolve()}}}\n"
        "sinks: [{name: file, type: jsonl, path: alerts.jsonl}]\n"
    )
    info("watching the month for incidents (trailseal watch --once) ...")
    alerts = _watch(log_dir)
    info("verifying the log ...")
    with Ledger.open(log_dir) as ledger:
        verified = ledger.verify()
    _tell(log_dir, report, verified)
    _tell_alerts(log_dir, alerts)


def _watch(log_dir: Path) -> list[Alert]:
    """The built-in rules over the month, as `trailseal watch --once` runs them."""
    from trailseal.detect.config import load_config  # noqa: PLC0415 - other commands start faster
    from trailseal.detect.engine import Engine  # noqa: PLC0415
    from trailseal.detect.rules import load  # noqa: PLC0415
    from trailseal.detect.sinks import Dispatcher  # noqa: PLC0415
    from trailseal.detect.store import open_store  # noqa: PLC0415

    with Ledger.open(log_dir) as ledger:
        config = load_config(log_dir)
        store = open_store(log_dir)
        try:
            Engine(ledger, store, load(config.rules), config).run_once()
            dispatcher = Dispatcher(store.reopen, config.sinks)
            dispatcher.deliver_due()
            dispatcher.store.close()
            return store.alerts()
        finally:
            store.close()


def _tell_alerts(log_dir: Path, alerts: list[Alert]) -> None:
    flag = f"--data {log_dir}"
    click.echo(f"\nThe built-in detection rules raised {len(alerts)} alerts:")
    for alert in alerts:
        shown = ", ".join(map(str, alert.evidence[:5])) + (
            " ..." if len(alert.evidence) > 5 else ""
        )
        click.echo(f"  #{alert.id} {alert.severity:8} {alert.rule}  {alert.group}  [{shown}]")
    click.echo(
        f"  trailseal alerts list {flag}          # with the entries that are their evidence\n"
        f"  trailseal alerts resolve 1 --reason '...' {flag}\n"
        f"  trailseal watch {flag}                # follow the log as it grows\n"
    )
    zone = "America/Chicago"  # the hospital's
    click.echo(
        "The month's reports (recorded in the log as report.produce):\n"
        f"  trailseal report hipaa-access --period 2026-10 --tz {zone} --format pdf "
        f"-o october.pdf --bundle october.zip {flag}\n"
        "      the monthly HIPAA access report, and its evidence bundle\n"
        f'  trailseal verify-bundle october.zip --vkey "$(trailseal pubkey {flag})"\n'
        "      checks the bundle with no database: every cited entry and its proof\n"
        f"  trailseal report actor-timeline a-2 --from 2026-10-21 --to 2026-10-21 --tz {zone} "
        f"--format html -o a-2.html {flag}\n"
        "      how the administrator became able to export, then exported\n"
        f"  trailseal report record-history patient/MRN-ICU-0001 --tz {zone} --format html "
        f"-o patient.html {flag}\n"
        "      one patient's access history\n"
        f"  trailseal report procedures --format html -o procedure.html {flag}\n"
        "      the audit-logging procedure, from the live configuration\n"
        "The dashboard (the same month, in a browser):\n"
        f"  trailseal principals create privacy-officer --role auditor {flag}\n"
        f"  trailseal serve --port 8080 {flag}\n"
        "      then open http://127.0.0.1:8080/ and sign in with the token printed above\n"
        f"\nEverything is in {log_dir.parent}; remove it to run the demo again."
    )


def _tell(log_dir: Path, report: Any, verified: VerificationReport) -> None:
    statuses = ", ".join(f"{n:,} x {code}" for code, n in sorted(report.statuses.items()))
    flag = f"--data {log_dir}"
    looks = [
        ("verify", "recompute every hash, signature and checkpoint"),
        ("search --action patient.read --limit 5", "reads, from the middleware"),
        ("search --action 'record.*' --limit 5", "row changes, with before and after"),
        ("search --resource-type staff_roles", "many-to-many links, from the ORM"),
        ("search --action 'iam.*'", "role changes, with before and after"),
        ("search --action user.login --outcome denied", "refused logins"),
    ]
    click.echo(
        f"\nThe hospital served {report.requests:,} requests in {report.seconds:.0f} s"
        f" ({statuses}).\nThe log holds {verified.size:,} entries; every hash, signature and"
        f" checkpoint verifies ({verified.checkpoints:,} checkpoints).\n\nWhere to look:"
    )
    for command, what in looks:
        name, _, rest = command.partition(" ")
        click.echo(f"  trailseal {name} {flag} {rest}".rstrip() + f"\n      {what}")
    click.echo("\nFour incidents are planted in the month. Each one's entries:")
    for incident in report.incidents:
        since = incident.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        until = (incident.end + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # exclusive
        click.echo(f"  {incident.name}: {incident.story}")
        click.echo(
            f"    trailseal search {flag} --actor {incident.actor} --since {since} --until {until}"
        )
    roster, geo = report.context
    click.echo(
        f"\nThe hospital's staff roster and IP geography, for detection: {roster}, {geo}\n"
        f"(named in {log_dir / 'detection.yaml'})."
    )
