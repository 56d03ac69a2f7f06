"""``bridge daemon``: run this home's daemon in the foreground (bridge/daemon/run.py)."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import EXISTING_FILE, read_passphrase


@click.command()
@click.option("--passphrase-file", type=EXISTING_FILE,
              help="File holding the passphrase of a sealed private key.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True)
@click.option("--log-format", type=click.Choice(["logfmt", "json"]), default="logfmt",
              show_default=True, help="Log lines on stderr as key=value or as JSON objects.")
@click.pass_obj
def daemon(obj: Ctx, passphrase_file: Path | None, log_level: str, log_format: str) -> None:
    """Run the bridge daemon in the foreground (stop with Ctrl-C or SIGTERM; SIGHUP reloads
    the pinned peers). Logs go to stderr (the journal, under systemd)."""
    # Imported here: the daemon's wiring (aiohttp, the engine) is not needed by other commands.
    from bridge.daemon.run import run_daemon

    with reporting():
        run_daemon(obj.home, passphrase=read_passphrase(passphrase_file), log_level=log_level,
                   log_format=log_format)


__all__ = ["daemon"]
