"""`trailseal serve` and `trailseal principals`: the HTTP service and its identities."""

from __future__ import annotations

import threading
from typing import Any

import click

from trailseal.access import ALL_TENANTS, TOKEN_ROLES
from trailseal.app import App, Caller
from trailseal.app.deployment import Deployment
from trailseal.cli._common import chosen_log, data_option, host, key_option
from trailseal.cli._output import emit_json, emit_rows, info, output_options
from trailseal.config import DEFAULT_LOG
from trailseal.errors import TrailsealError


@click.command()
@data_option
@key_option
@click.option(
    "--host", "address", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-body-bytes",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1024),
    help="Largest request body.",
)
@click.option(
    "--max-batch",
    default=10_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most events in one request.",
)
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Requests a second per principal (bursts of twice that).",
)
@click.option(
    "--session-idle",
    default=900,
    show_default=True,
    type=click.IntRange(min=1),
    help="Seconds a dashboard session may go unused before it must sign in again.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Also run detection in this process (as `trailseal watch` does on its own).",
)
@click.option(
    "--nats",
    metavar="URL",
    help="Also append what producers publish to NATS JetStream (nats://HOST:PORT); "
    "several serve processes may consume one stream.",
)
@click.option(
    "--export",
    "exports",
    multiple=True,
    metavar="NAME",
    help="Also follow the log to this destination of DATA/exports.yaml (as `trailseal "
    "export-to NAME` does on its own); repeat for more.",
)
def serve(
    data: str | None,
    key: str | None,
    address: str,
    port: int,
    max_body_bytes: int,
    max_batch: int,
    rate: float,
    session_idle: int,
    watch: bool,
    nats: str | None,
    exports: tuple[str, ...],
) -> None:
    """Serve the log over HTTP: the dashboard at /, the API under /v1, OpenAPI at
    /openapi.json."""
    import uvicorn  # noqa: PLC0415 - the server's modules load only for `serve`

    from trailseal import web  # noqa: PLC0415
    from trailseal.server import Limits, create_app  # noqa: PLC0415
    from trailseal.server.app import serve_deployment  # noqa: PLC0415

    if chosen_log() != DEFAULT_LOG:
        raise click.UsageError("serve serves every log of the deployment; leave out --log")
    deployment = Deployment.open(data, key_path=key)
    application = deployment.default
    if not application.principals.exist():
        info(
            "no principals yet: create an administrator with "
            "`trailseal principals create NAME --role admin`"
        )
    limits = Limits(
        max_body_bytes=max_body_bytes, max_batch=max_batch, rate=rate, burst=max(1, int(rate * 2))
    )
    watchers = _watchers(deployment, key) if watch else {}
    default = watchers.get(DEFAULT_LOG)
    app = create_app(application, limits, default.health.report if default else None, deployment)
    web.mount(app, application, session_idle)
    several = len(deployment.names) > 1
    served: Any = app
    if several:
        reports = {name: watcher.health.report for name, watcher in watchers.items()}
        served = serve_deployment(app, deployment, limits, reports)
    logs = f"{len(deployment.names)} logs ({', '.join(deployment.names)}), " if several else ""
    info(
        f"serving {logs}log {application.ledger.origin!r} on http://{address}:{port} "
        "(dashboard at /, API under /v1, OpenAPI at /openapi.json); Ctrl-C stops"
    )
    for name, watcher in watchers.items():
        where = "" if name == DEFAULT_LOG else f" on log {name}"
        info(f"watching{where} with {len(watcher.pack.rules)} rules (alerts under /v1/alerts)")
        watcher.start()
    loops = [loop for each in deployment.apps() for loop in _loops(each)]
    exporters = _exporters(application, exports)
    stream = None
    if nats:
        from trailseal.app.stream import StreamIngest  # noqa: PLC0415 - only with --nats

        stream = StreamIngest(deployment, nats)
        stream.start()
        info(f"appending what producers publish to JetStream at {nats}")
    try:
        uvicorn.run(served, host=address, port=port, log_level="warning", server_header=False)
    finally:
        _stop(list(watchers.values()), loops, stream, exporters)
        deployment.close()


def _stop(watchers: list[Any], loops: list[Any], stream: Any, exporters: list[Any]) -> None:
    """Stop what serve started beside the HTTP service, each given time to finish."""
    for watcher in watchers:
        watcher.stop()
    for watcher in watchers:
        watcher.join(timeout=30)
    for loop, wait in loops:
        loop.stop.set()
        loop.join(timeout=wait)  # a retention run stopped midway is finished by the next
    if stream is not None:
        stream.stop()
        stream.join(timeout=30)
    for exporter, thread in exporters:
        exporter.stop.set()
        thread.join(timeout=60)
        exporter.destination.close()


def _watchers(deployment: Deployment, key: str | None) -> dict[str, Any]:
    """Detection for each log (``serve --watch``), each under its own lease."""
    from trailseal.detect.watcher import Watcher  # noqa: PLC0415 - only with --watch

    return {
        each.log: Watcher(each.ledger.settings.data_dir, key if each.log == DEFAULT_LOG else None)
        for each in deployment.apps()
    }


def _exporters(application: App, names: tuple[str, ...]) -> list[tuple[Any, threading.Thread]]:
    """An exporter thread per destination named with --export (each its own cursor)."""
    started = []
    caller = Caller(Caller.host().principal, None, "trailseal-export")
    for name in names:
        exporter = application.exports.exporter(caller, name)

        def follow(exporter: Any = exporter, name: str = name) -> None:
            while not exporter.stop.is_set():
                try:
                    exporter.run()
                except TrailsealError as exc:  # the store unreachable: said, then again
                    info(f"export to {name}: {exc.diagnostics()}")
                    exporter.stop.wait(5)

        thread = threading.Thread(target=follow, name=f"trailseal-export-{name}", daemon=True)
        thread.start()
        info(f"exporting to {name} from entry {exporter.state.cursor + 1}")
        started.append((exporter, thread))
    return started


def _loops(application: App) -> list[tuple[_Scheduler | _Importer | _Keeper, float]]:
    """Start the work `serve` does on its own as configured (scheduled reports, imports,
    retention); each with how long to wait for it at shutdown."""
    loops: list[tuple[_Scheduler | _Importer | _Keeper, float]] = []
    if application.reports.schedules().schedules:
        info(f"producing {len(application.reports.schedules().schedules)} scheduled reports")
        loops.append((_Scheduler(application), 60))
    if application.imports.sources():
        names = ", ".join(source.org for source in application.imports.sources())
        info(f"importing Terraform Cloud audit trails on their intervals: {names}")
        loops.append((_Importer(application), 60))
    if application.retention.config().schedule:
        info(f"running retention on its schedule ({application.retention.config().schedule})")
        loops.append((_Keeper(application), 600))
    for loop, _ in loops:
        loop.start()
    return loops


class _Scheduler(threading.Thread):
    """Produces the scheduled reports inside `serve`, looking once a minute."""

    def __init__(self, application: App) -> None:
        super().__init__(name="trailseal-reports", daemon=True)
        self.application = application
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                for done in self.application.reports.run_schedules():
                    info(f"scheduled report {done.schedule}: {', '.join(done.files)}")
            except TrailsealError as exc:  # a bad schedule or a full disk: said, then retried
                info(f"scheduled reports: {exc.diagnostics()}")
            self.stop.wait(60)


class _Importer(threading.Thread):
    """Imports the audit trails DATA/imports.yaml names inside `serve`, each on its
    interval (looking every few seconds)."""

    def __init__(self, application: App) -> None:
        super().__init__(name="trailseal-imports", daemon=True)
        self.application = application
        self.stop = threading.Event()

    def run(self) -> None:
        caller = Caller(Caller.host().principal, None, "trailseal-imports")
        while not self.stop.is_set():
            try:
                for source, done in self.application.imports.run_due(caller):
                    if isinstance(done, TrailsealError):
                        info(f"terraform {source.org}: {done.diagnostics()}")
                        continue
                    info(
                        f"terraform {source.org}: {done.imported:,} imported, "
                        f"{done.duplicates:,} already in the log, {len(done.refused):,} refused"
                    )
                    for note in done.notes:
                        info(f"terraform {source.org}: warning: {note}")
            except TrailsealError as exc:  # an unreachable API, a refused token: said, retried
                info(f"terraform import: {exc.diagnostics()}")
            self.stop.wait(5)


class _Keeper(threading.Thread):
    """Runs retention inside `serve` when its schedule is due, looking once a minute."""

    def __init__(self, application: App) -> None:
        super().__init__(name="trailseal-retention", daemon=True)
        self.application = application
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                done = self.application.retention.run_due()
                if done is not None:
                    info(
                        f"retention at {done.at}: {done.sealed:,} sealed, {done.purged:,} "
                        f"purged, {done.held:,} held"
                    )
            except TrailsealError as exc:  # storage unreachable, a bad file: said, retried
                info(f"retention: {exc.diagnostics()}")
            self.stop.wait(60)


@click.group()
def principals() -> None:
    """Manage principals on this host (bootstrap the first administrator here)."""


@principals.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([str(role) for role in TOKEN_ROLES]))
@click.option("--tenant", default=ALL_TENANTS, show_default=True, help="The tenant, or * for all.")
@data_option
@key_option
def create(name: str, role: str, tenant: str, data: str | None, key: str | None) -> None:
    """Create a principal; its token is printed once and never stored."""
    with App.open(data, key_path=key) as app:
        principal, token = app.principals.create(host(), name, role, tenant)
        info("the token is shown once; keep it in a secret store:")
        emit_json({**principal.to_json(), "token": token})


@principals.command("list")
@data_option
@key_option
@output_options
def list_command(data: str | None, key: str | None, fmt: str | None) -> None:
    """List principals (never their tokens)."""
    with App.open(data, key_path=key) as app:
        rows = [p.to_json() for p in app.principals.list(host())]
    columns = [(k, lambda r, k=k: r[k]) for k in ("id", "name", "role", "tenant", "revoked_at")]
    emit_rows(rows, fmt, columns)


@principals.command("rotate")
@click.argument("principal_id")
@data_option
@key_option
def rotate(principal_id: str, data: str | None, key: str | None) -> None:
    """Give a principal a new token (printed once); the old one stops working at once."""
    with App.open(data, key_path=key) as app:
        rotated, token = app.principals.rotate(host(), principal_id)
        info("the token is shown once; keep it in a secret store:")
        emit_json({**rotated.to_json(), "token": token})


@principals.command("revoke")
@click.argument("principal_id")
@data_option
@key_option
def revoke(principal_id: str, data: str | None, key: str | None) -> None:
    """Revoke a principal's token at once."""
    with App.open(data, key_path=key) as app:
        emit_json(app.principals.revoke(host(), principal_id).to_json())
