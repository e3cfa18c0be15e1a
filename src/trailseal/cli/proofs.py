"""`trailseal prove`: inclusion and consistency proofs."""

from __future__ import annotations

import click

from trailseal.app import App
from trailseal.cli._common import data_option, host, key_option
from trailseal.cli._output import emit_json


@click.group()
def prove() -> None:
    """Print RFC 9162 inclusion and consistency proofs."""


@prove.command()
@click.argument("index", type=click.IntRange(min=0, max=2**62))
@click.option(
    "--size", type=click.IntRange(min=1, max=2**62), help="Tree size [default: the log's size]."
)
@data_option
@key_option
def inclusion(index: int, size: int | None, data: str | None, key: str | None) -> None:
    """Prove entry INDEX is in the tree of SIZE entries (recorded as audit.read)."""
    with App.open(data, key_path=key) as app:
        emit_json(app.entries.prove_inclusion(host(), index, size).to_json())


@prove.command()
@click.argument("old", type=click.IntRange(min=0, max=2**62))
@click.argument("new", type=click.IntRange(min=0, max=2**62))
@data_option
@key_option
def consistency(old: int, new: int, data: str | None, key: str | None) -> None:
    """Prove the tree of OLD entries is a prefix of the tree of NEW entries (recorded)."""
    with App.open(data, key_path=key) as app:
        emit_json(app.entries.prove_consistency(host(), old, new).to_json())
