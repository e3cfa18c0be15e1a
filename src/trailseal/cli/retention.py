"""`trailseal retention`: what the retention policies (DATA/retention.yaml) would do."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from trailseal.app import App
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import emit_rows, info, output_options
from trailseal.query.times import span


@click.group()
def retention() -> None:
    """Retention policies: what moves to the cold tier and what is purged, and when."""


def _moment(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return span(value, datetime.now(UTC))[0]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@retention.command("plan")
@click.option(
    "--at",
    callback=_moment,
    help="Plan for this moment instead of now (RFC 3339, a date, or now+30d).",
)
@data_option
@key_option
@output_options
def plan(at: datetime | None, data: str | None, key: str | None, fmt: str | None) -> None:
    """Per policy: the entries it governs (the longest policy that matches an entry wins),
    how many are past their hot period (to move to the cold tier) and past their total
    period (to purge), from when, and when the next entry moves. Counts only: no event
    is shown. Recorded in the log."""
    with App.open(data, key_path=key) as app:
        found = app.retention.plan(host(), at)
    rows = [item.to_json() for item in found.policies]
    if not rows:
        info("no retention policies (DATA/retention.yaml): every entry is kept, hot")
    emit_rows(
        rows,
        fmt,
        [
            ("policy", lambda r: r["policy"]),
            ("match", lambda r: r["match"] or "(every entry)"),
            ("total", lambda r: r["total"]),
            ("hot", lambda r: r["hot"]),
            ("governed", lambda r: r["governed"]),
            ("hot entries", lambda r: r["hot_entries"]),
            ("to cold", lambda r: r["to_cold"]),
            ("to purge", lambda r: r["to_purge"]),
            ("cold before", lambda r: r["cold_before"] or ""),
            ("purge before", lambda r: r["purge_before"] or "after retirement"),
            ("next to cold", lambda r: r["next_cold"] or ""),
        ],
    )
    info(
        f"planned at {found.at} over {found.size:,} entries; {found.unmatched:,} match no "
        "policy and are kept"
    )
