"""Options and option values that several ``bridge`` commands share."""

from __future__ import annotations

from pathlib import Path

import click

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Machine-readable JSON output.")

# The same flag in the words of ``bridge keys`` and ``bridge tls`` (their help kept as it was).
json_output_option = click.option("--json", "as_json", is_flag=True,
                                  help="Machine-readable output.")

force_option = click.option("--force", is_flag=True,
                            help="Replace the output file if it exists (never a symbolic link).")

# A file that must exist (its contents are read by the command, e.g. a passphrase).
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase in ``path`` without its line ending; None without a file."""
    if path is None:
        return None
    data = path.read_bytes().rstrip(b"\r\n")
    if not data:
        raise click.UsageError(f"passphrase file {path} is empty")
    return data


__all__ = ["EXISTING_FILE", "force_option", "json_option", "json_output_option",
           "read_passphrase"]
