"""Options every command shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from trailseal.app import Caller

F = TypeVar("F", bound=Callable[..., Any])

data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Data directory [default: $TRAILSEAL_DATA or ./trailseal-data].",
)

key_option = click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Signing key file, if kept apart from the data "
    "[default: $TRAILSEAL_KEY or DATA/signing.key].",
)


def host() -> Caller:
    """The command line acts as ``host:<os user>``; its reads are recorded like any other."""
    return Caller.host()
