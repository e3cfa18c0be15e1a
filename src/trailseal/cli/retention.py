"""`trailseal retention`: the plan, runs, purge receipts and legal holds (DATA/retention.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from trailseal.app import App
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import emit_json, emit_rows, info, output_options, resolve
from trailseal.query.times import span

F = TypeVar("F", bound=Callable[..., Any])


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


def _at_option(what: str) -> Callable[[F], F]:
    return click.option(
        "--at",
        callback=_moment,
        help=f"{what} this moment instead of now (RFC 3339, a date, or now+30d).",
    )


@retention.command("plan")
@_at_option("Plan for")
@data_option
@key_option
@output_options
def plan(at: datetime | None, data: str | None, key: str | None, fmt: str | None) -> None:
    """Per policy: the entries it governs (the longest policy that matches an entry wins),
    how many are past their hot period (to move to the cold tier) and past their total
    period (to purge, or held by a legal hold), from when, and when the next entry moves.
    Counts only: no event is shown. Recorded in the log."""
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
            ("past hot", lambda r: r["past_hot"]),
            ("in cold", lambda r: r["in_cold"]),
            ("to cold", lambda r: r["to_cold"]),
            ("to purge", lambda r: r["to_purge"]),
            ("held", lambda r: r["held"]),
            ("cold before", lambda r: r["cold_before"] or ""),
            ("purge before", lambda r: r["purge_before"] or "after retirement"),
            ("next to cold", lambda r: r["next_cold"] or ""),
        ],
    )
    info(
        f"planned at {found.at} over {found.size:,} entries; {found.unmatched:,} match no "
        "policy and are kept"
    )


@retention.command("run")
@_at_option("Run as at")
@data_option
@key_option
@output_options
def run(at: datetime | None, data: str | None, key: str | None, fmt: str | None) -> None:
    """Seal entries past their hot period into the cold tier and purge entries past
    their total period, honouring legal holds. Each purge leaves a signed receipt and an
    entry; a run that is interrupted is finished by the next one."""
    with App.open(data, key_path=key) as app:
        found = app.retention.run(host(), at, progress=info)
    if fmt == "json":
        emit_json(found.to_json())
        return
    rows = [{"policy": name, **counts} for name, counts in found.policies.items()]
    emit_rows(
        rows,
        fmt,
        [
            ("policy", lambda r: r["policy"]),
            ("sealed", lambda r: r["to_cold"]),
            ("purged", lambda r: r["to_purge"]),
            ("held", lambda r: r["held"]),
        ],
    )
    info(
        f"at {found.at}: {found.sealed:,} entries sealed into {len(found.segments)} segments "
        f"({found.resealed:,} moved ahead of a purge), {found.purged:,} purged "
        f"(receipts {', '.join(map(str, found.receipts)) or 'none'}), {found.held:,} held, "
        f"{len(found.deleted)} segments deleted"
        + (f", {len(found.kept_locked)} retired but still locked" if found.kept_locked else "")
    )


@retention.command("hold")
@click.argument("query")
@click.option("--reason", required=True, help="Why: the matter or case it preserves.")
@click.option(
    "--stop-cold", is_flag=True, help="Also keep what it covers hot (not moved to the cold tier)."
)
@data_option
@key_option
def hold(query: str, reason: str, stop_cold: bool, data: str | None, key: str | None) -> None:
    """Place a legal hold on what QUERY covers (e.g. 'tenant:acme', 'actor:u-7
    time:2026-03', 'resource:patient/MRN-0001'): nothing it covers is purged until it is
    released. The hold is an entry in the log."""
    with App.open(data, key_path=key) as app:
        placed = app.retention.hold(host(), query, reason, stops_cold=stop_cold)
    info(
        f"hold {placed.id} placed (entry {placed.index}); release it with "
        f"`trailseal retention release {placed.id} --reason ...`"
    )
    emit_json(placed.to_json())


@retention.command("release")
@click.argument("hold_id")
@click.option("--reason", required=True, help="Why the hold ends.")
@data_option
@key_option
def release(hold_id: str, reason: str, data: str | None, key: str | None) -> None:
    """Release a legal hold; what it covered follows its policies again."""
    with App.open(data, key_path=key) as app:
        released = app.retention.release(host(), hold_id, reason)
    info(f"hold {released.id} released")


@retention.command("receipts")
@click.option("--receipt", type=int, help="Only this receipt, whole (as JSON).")
@data_option
@key_option
@output_options
def receipts(receipt: int | None, data: str | None, key: str | None, fmt: str | None) -> None:
    """The signed purge receipts: what each purge removed (index ranges and their leaf
    hashes), under which policies, when and by whom, with the log's signature. Give one
    to an auditor with --receipt N --json; docs/retention.md says how to check it."""
    with App.open(data, key_path=key) as app:
        found = app.retention.receipts(host())
    if receipt is not None:
        chosen = [r for r in found if r["receipt"] == receipt]
        if not chosen:
            raise click.ClickException(f"no receipt {receipt}; there are {len(found)}")
        emit_json(chosen[0])
        return
    if resolve(fmt) in ("json", "jsonl"):  # each body exactly as signed, as with --receipt
        emit_rows(found, fmt, [])
        return
    rows = [{"receipt": r["receipt"], **json.loads(r["body"])} for r in found]
    if not rows:
        info("no purge receipts: nothing has been purged")
    emit_rows(
        rows,
        fmt,
        [
            ("receipt", lambda r: r["receipt"]),
            ("purged at", lambda r: r["purged_at"]),
            ("run by", lambda r: r["run_by"]),
            ("entries", lambda r: r["count"]),
            ("ranges", lambda r: len(r["ranges"])),
            ("policies", lambda r: ", ".join(f"{k} ({v})" for k, v in r["policies"].items())),
        ],
    )


@retention.command("holds")
@data_option
@key_option
@output_options
def holds(data: str | None, key: str | None, fmt: str | None) -> None:
    """The legal holds in force, read back from the log."""
    with App.open(data, key_path=key) as app:
        found = app.retention.holds(host())
    emit_rows(
        [h.to_json() for h in found],
        fmt,
        [
            ("id", lambda r: r["id"]),
            ("query", lambda r: r["query"]),
            ("stops cold", lambda r: "yes" if r["stops_cold"] else "no"),
            ("reason", lambda r: r["reason"]),
            ("placed by", lambda r: r["placed_by"]),
            ("placed at", lambda r: r["placed_at"]),
        ],
    )
