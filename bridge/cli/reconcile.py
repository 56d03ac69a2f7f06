"""``bridge reconcile``: the reconciliation report of the running daemon, rendered as text, JSON,
CSV or one self-contained HTML file. Parse, call, print (the report itself is
:mod:`bridge.reports`).

Exit codes as the other daemon commands: 0 ok; 1 a failure reported by the daemon; 2 bad usage;
3 the daemon is not running or stopped answering.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console, Group

from bridge.client import BridgeClient, DaemonUnavailable
from bridge.core.errors import BridgeError
from bridge.core.printable import printable, printable_lines
from bridge.home.files import write_file
from bridge.home.folder import Home
from bridge.reports.render import FORMATS, render
from bridge.reports.render.json import ReportFormatError, from_json
from bridge.reports.render.text import text_renderables

EXIT_FAILED = 1
EXIT_UNAVAILABLE = 3


def _home(ctx: click.Context) -> Home:
    home = getattr(ctx.obj, "home", None)
    if not isinstance(home, Home):  # pragma: no cover - only if used outside ``bridge``
        raise click.UsageError("no Bridge home in the command context")
    return home


@click.command()
@click.option("--peer", metavar="P", help="Only the exchange with this peer (default: all).")
@click.option("--quota", type=click.IntRange(min=1), metavar="N",
              help="Agreement-level quota a side (e.g. an all-for-all exchange of at least "
                   "1,000 a side): progress of each side against it.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="text (tables), json, csv, or html (one self-contained "
              "file with charts).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to this new file, mode 0600 (default: standard output).")
@click.option("--force", is_flag=True,
              help="Replace the output file if it exists (never a symbolic link).")
@click.pass_context
def reconcile(ctx: click.Context, peer: str | None, quota: int | None, fmt: str,
              output: Path | None, force: bool) -> None:
    """Reconciliation: per side and category, how many were listed, put into manifests,
    delivered, received, confirmed, disputed or are outstanding; declared versus counted per
    manifest; parity of an all-for-all exchange; progress against quotas.

    \b
    Examples:
      bridge reconcile
      bridge reconcile --peer beta --quota 1000
      bridge reconcile --format html -o reconciliation.html
    """
    client = BridgeClient(_home(ctx).socket_path)
    try:
        data = client.reconcile(peer=peer, quota=quota)
        report = from_json(data)
    except DaemonUnavailable as err:
        click.echo(f"error: {printable_lines(err)}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    except BridgeError as err:
        click.echo(f"error: {printable_lines(err)}", err=True)
        sys.exit(EXIT_FAILED)
    except ReportFormatError as err:
        click.echo(f"error: the daemon's report could not be read: {printable(err)}", err=True)
        sys.exit(EXIT_FAILED)
    if output is None and fmt == "text":
        console = Console(highlight=False, soft_wrap=False)
        if console.is_terminal:  # people at a terminal get colour, at their width
            console.print(Group(*text_renderables(report)))
            return
    text = render(report, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_file(output, text, replace=force)
    except BridgeError as err:
        click.echo(f"error: {printable_lines(err)}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"wrote the {fmt} reconciliation report to {output}", err=True)


__all__ = ["reconcile"]
