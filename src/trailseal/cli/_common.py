"""Options every command shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from trailseal.app import Caller

F = TypeVar("F", bound=Callable[..., Any])


def _store_flag(_: click.Context, __: click.Parameter, value: str | None) -> None:
    """``--store`` outranks ``TRAILSEAL_STORE``, which outranks DATA/config.toml: the flag
    is handed on as the variable, so every command and its helpers see one setting."""
    if value:
        os.environ["TRAILSEAL_STORE"] = value


_data = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Data directory [default: $TRAILSEAL_DATA or ./trailseal-data].",
)
_store = click.option(
    "--store",
    metavar="URL",
    expose_value=False,
    is_eager=True,
    callback=_store_flag,
    help="Where the log is stored: a path, sqlite:///PATH or postgresql://USER@HOST/DB "
    "[default: $TRAILSEAL_STORE, then DATA/config.toml, then DATA/log.db].",
)


def data_option(func: F) -> F:
    """``--data DIR`` and ``--store URL``: where the log lives."""
    return _data(_store(func))


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
