"""Generate docs/cli.md from the commands' own --help (a test keeps the file current).

python -m trailseal.cli._reference > docs/cli.md
"""

from __future__ import annotations

import click

from trailseal.cli import cli


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        with click.Context(command, info_name=path[-1]) as ctx:
            for name in sorted(command.list_commands(ctx)):
                sub = command.get_command(ctx, name)
                assert sub is not None
                found += _walk(sub, [*path, name])
    return found


def reference() -> str:
    """The Markdown CLI reference."""
    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m trailseal.cli._reference`; a test checks it.",
        "Exit codes: 0 success, 1 error, 2 usage, 3 verification failed, 4 authentication or",
        "permission refused, 130 interrupted.",
        "",
        "The command line acts as the principal `host:<os user>`, with every right on the",
        "host (it holds the data directory and the key already), through the same",
        "application layer as the HTTP API: its reads are recorded like any other.",
        "`trailseal get 5` appends an `audit.read` entry; `search`, `prove` and",
        "`alerts list` do too, `export` appends `audit.export` before the first line, and",
        "`verify` appends `audit.verify` with its result. Recording needs the signing key",
        "(`--key`, `TRAILSEAL_KEY` or the data directory's own); a read that cannot be",
        "recorded is refused. There is no option to read unrecorded.",
        "",
        "Every entry records its submitter (`submitter` beside `received_at`): the",
        "principal whose token appended it, `host:<os user>` for `trailseal append`, and",
        "`trailseal` for the log's own records (reads, erasures, alerts).",
    ]
    for path, command in _walk(cli, ["trailseal"]):
        name = " ".join(path)
        with click.Context(command, info_name=name, terminal_width=100) as ctx:
            text = command.get_help(ctx)
        parts += ["", f"## {name}", "", "```text", text, "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(reference(), end="")  # noqa: T201
