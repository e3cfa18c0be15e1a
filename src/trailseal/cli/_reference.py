"""Generate docs/cli.md from the commands' own --help (a test keeps the file current).

python -m trailseal.cli._reference > docs/cli.md
"""

from __future__ import annotations

import click

from trailseal.cli import cli


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            found += _walk(command.commands[name], [*path, name])
    return found


def reference() -> str:
    """The Markdown CLI reference."""
    parts = [
        "# CLI reference",
        "",
        "Generated from `--help` by `python -m trailseal.cli._reference`; a test checks it.",
        "Exit codes: 0 success, 1 error, 2 usage, 3 verification failed, 130 interrupted.",
    ]
    for path, command in _walk(cli, ["trailseal"]):
        name = " ".join(path)
        with click.Context(command, info_name=name, terminal_width=100) as ctx:
            text = command.get_help(ctx)
        parts += ["", f"## {name}", "", "```text", text, "```"]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(reference(), end="")  # noqa: T201
