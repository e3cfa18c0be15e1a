"""The `trailseal` command: a thin layer over the library.

Exit codes: 0 success, 1 error, 2 usage, 3 verification failed,
4 authentication or permission, 130 interrupted.
"""

from __future__ import annotations

import sys
from importlib import import_module

import click

from trailseal import __version__
from trailseal.errors import AccessError, QueryError, TrailsealError, VerificationError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_VERIFICATION = 3
EXIT_ACCESS = 4
EXIT_INTERRUPTED = 130


# Each command's module loads only when that command runs (or for --help), so that
# `trailseal --version` imports no ledger and `trailseal get` no server.
_COMMANDS = {
    "init": "log",
    "append": "log",
    "get": "log",
    "export": "log",
    "checkpoint": "log",
    "pubkey": "log",
    "erase": "log",
    "search": "log",
    "prove": "proofs",
    "verify": "verify:verify_command",
    "verify-export": "verify:verify_export_command",
    "serve": "serve",
    "principals": "serve",
    "rules": "detect",
    "watch": "detect",
    "alerts": "detect",
    "demo": "demo",
    "report": "reports",
    "document": "reports",
    "verify-bundle": "reports:verify_bundle_command",
    "retention": "retention",
    "import": "imports:import_",
    "export-to": "exports:export_to",
    "logs": "logs",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002 - click's signature
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, attribute = where.partition(":")
        found = getattr(import_module(f"trailseal.cli.{module}"), attribute or cmd_name)
        assert isinstance(found, click.Command)
        return found


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="trailseal")
def cli() -> None:
    """trailseal: a tamper-evident audit log.

    Every command takes --data DIR (default ./trailseal-data, or TRAILSEAL_DATA) and
    --store URL (default: the data directory's own SQLite file, or postgresql://...).
    """


def main() -> None:
    """Entry point: run the CLI, turning trailseal errors into messages and exit codes."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except VerificationError as exc:
        click.echo(f"verification FAILED: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_VERIFICATION)
    except AccessError as exc:
        click.echo(f"refused: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_ACCESS)
    except QueryError as exc:  # a query is part of the command line: a usage error
        click.echo(f"error: bad query {exc.diagnostics()}", err=True)
        sys.exit(EXIT_USAGE)
    except TrailsealError as exc:
        click.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
