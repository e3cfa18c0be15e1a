"""`trailseal serve` and `trailseal principals`: the HTTP service and its identities."""

from __future__ import annotations

import getpass
import secrets

import click
import uvicorn

from trailseal.access import ALL_TENANTS, PrincipalStore, Role
from trailseal.cli._common import data_option, key_option
from trailseal.cli._output import emit_json, emit_rows, info, output_options
from trailseal.events import event_from_mapping
from trailseal.ledger import Ledger
from trailseal.ledger.entry import utc_now
from trailseal.server import Limits, create_app

PRINCIPALS_DB = "principals.db"


@click.command()
@data_option
@key_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
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
    "--watch",
    is_flag=True,
    help="Also run detection in this process (as `trailseal watch` does on its own).",
)
def serve(
    data: str | None,
    key: str | None,
    host: str,
    port: int,
    max_body_bytes: int,
    max_batch: int,
    rate: float,
    watch: bool,
) -> None:
    """Serve the log over HTTP (API under /v1, OpenAPI at /openapi.json)."""
    ledger = Ledger.open(data, key_path=key)
    store = PrincipalStore(ledger.settings.data_dir / PRINCIPALS_DB)
    if not store.list():
        info(
            "no principals yet: create an administrator with "
            "`trailseal principals create NAME --role admin`"
        )
    limits = Limits(
        max_body_bytes=max_body_bytes, max_batch=max_batch, rate=rate, burst=max(1, int(rate * 2))
    )
    app = create_app(ledger, store, limits)
    watcher = None
    if watch:
        from trailseal.detect.watcher import Watcher  # noqa: PLC0415 - only with --watch

        watcher = Watcher(ledger.settings.data_dir, key)
    info(
        f"serving log {ledger.origin!r} on http://{host}:{port} "
        "(API under /v1, OpenAPI at /openapi.json); Ctrl-C stops"
    )
    if watcher is not None:
        info(f"watching with {len(watcher.pack.rules)} rules (alerts under /v1/alerts)")
        watcher.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        if watcher is not None:
            watcher.stop()
            watcher.join(timeout=30)
        store.close()
        ledger.close()


@click.group()
def principals() -> None:
    """Manage principals on this host (bootstrap the first administrator here)."""


@principals.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--tenant", default=ALL_TENANTS, show_default=True, help="The tenant, or * for all.")
@data_option
@key_option
def create(name: str, role: str, tenant: str, data: str | None, key: str | None) -> None:
    """Create a principal; its token is printed once and never stored."""
    with Ledger.open(data, key_path=key) as ledger:
        store = PrincipalStore(ledger.settings.data_dir / PRINCIPALS_DB)
        try:
            principal, token = store.create(name, Role(role), tenant)
        finally:
            store.close()
        _record(ledger, "principal.create", principal.id)
        info("the token is shown once; keep it in a secret store:")
        emit_json({**principal.to_json(), "token": token})


@principals.command("list")
@data_option
@output_options
def list_command(data: str | None, fmt: str | None) -> None:
    """List principals (never their tokens)."""
    with Ledger.open(data) as ledger:
        store = PrincipalStore(ledger.settings.data_dir / PRINCIPALS_DB)
        try:
            rows = [p.to_json() for p in store.list()]
        finally:
            store.close()
    columns = [(k, lambda r, k=k: r[k]) for k in ("id", "name", "role", "tenant", "revoked_at")]
    emit_rows(rows, fmt, columns)


@principals.command("revoke")
@click.argument("principal_id")
@data_option
@key_option
def revoke(principal_id: str, data: str | None, key: str | None) -> None:
    """Revoke a principal's token at once."""
    with Ledger.open(data, key_path=key) as ledger:
        store = PrincipalStore(ledger.settings.data_dir / PRINCIPALS_DB)
        try:
            revoked = store.revoke(principal_id)
        finally:
            store.close()
        _record(ledger, "principal.revoke", revoked.id)
        emit_json(revoked.to_json())


def _record(ledger: Ledger, action: str, principal_id: str) -> None:
    """Principal changes made on the host are entries too."""
    ledger.append(
        [
            event_from_mapping(
                {
                    "id": f"cli-{secrets.token_hex(8)}",
                    "time": utc_now(),
                    "actor": {"id": f"local:{getpass.getuser()}", "type": "user"},
                    "action": action,
                    "resource": {"type": "principal", "id": principal_id},
                    "outcome": {"result": "success"},
                    "source": {"service": "trailseal-cli"},
                }
            )
        ]
    )


COMMANDS = (serve, principals)
