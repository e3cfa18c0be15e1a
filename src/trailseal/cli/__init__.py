"""The `trailseal` command: a thin layer over the library.

Exit codes: 0 success, 1 error, 2 usage, 3 verification failed,
4 authentication or permission, 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from trailseal import __version__
from trailseal.cli import demo, detect, log, proofs, serve, verify
from trailseal.errors import AccessError, TrailsealError, VerificationError

EXIT_ERROR = 1
EXIT_VERIFICATION = 3
EXIT_ACCESS = 4
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="trailseal")
def cli() -> None:
    """trailseal: a tamper-evident audit log.

    Every command takes --data DIR (default ./trailseal-data, or TRAILSEAL_DATA).
    """


for command in (
    *log.COMMANDS,
    *proofs.COMMANDS,
    *verify.COMMANDS,
    *serve.COMMANDS,
    *detect.COMMANDS,
    *demo.COMMANDS,
):
    cli.add_command(command)


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
    except TrailsealError as exc:
        click.echo(f"error: {exc.diagnostics()}", err=True)
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
