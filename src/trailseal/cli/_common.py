"""Options every command shares."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trailseal.app import Caller
from trailseal.config import DEFAULT_LOG, check_log_name, log_names, resolve_data_dir
from trailseal.errors import ConfigError
from trailseal.layout import DataLayout

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


_log = click.option(
    "--log",
    "log",
    metavar="NAME",
    envvar="TRAILSEAL_LOG",
    default=None,
    help="Which log of the deployment [default: $TRAILSEAL_LOG, else the default log, the "
    "data directory's own].",
)


def log_dir(data: str | None, name: str) -> Path:
    """The data directory of the deployment's log ``name`` (ConfigError, listing the
    logs, when there is none)."""
    root = resolve_data_dir(data)
    if check_log_name(name) == DEFAULT_LOG:
        return root
    directory = DataLayout(root).log_dir(name)
    if not (directory / "config.toml").is_file():
        known = ", ".join(log_names(root)) if root.is_dir() else "none yet"
        raise ConfigError(
            f"no log {name!r} in {root} (its logs: {known}); create it with "
            f"`trailseal logs create {name}`"
        )
    return directory


def deployment_dir(data: str | None) -> Path:
    """The deployment's data directory, given the ``data`` a command received (the chosen
    log's own directory, ``DEPLOYMENT/logs/NAME``, when --log named one)."""
    directory = resolve_data_dir(data)
    return directory if chosen_log() == DEFAULT_LOG else directory.parent.parent


def chosen_log() -> str:
    """The log this command was told to act on (``--log``), ``default`` when none."""
    found = click.get_current_context().meta.get("trailseal.log")
    return found if isinstance(found, str) else DEFAULT_LOG


def data_option(func: F) -> F:
    """``--data DIR``, ``--store URL`` and ``--log NAME``: where the log lives. The command
    gets the chosen log's own data directory as ``data``."""

    @functools.wraps(func)
    def chosen(*args: Any, **kwargs: Any) -> Any:
        name = kwargs.pop("log") or DEFAULT_LOG
        click.get_current_context().meta["trailseal.log"] = name
        if name != DEFAULT_LOG:
            kwargs["data"] = str(log_dir(kwargs["data"], name))
        return func(*args, **kwargs)

    return _data(_store(_log(chosen)))  # type: ignore[return-value]


def deployment_option(func: F) -> F:
    """``--data DIR`` and ``--store URL`` for commands over every log of a deployment."""
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
