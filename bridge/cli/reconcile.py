"""``bridge reconcile``: the reconciliation report of the running daemon, rendered as text, JSON,
CSV or one self-contained HTML file. Parse, call, print (the report itself is
:mod:`bridge.reports`).

Exit codes as the other daemon commands: 0 ok; 1 a failure reported by the daemon; 2 bad usage;
3 the daemon is not running or stopped answering.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console, Group

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import force_option
from bridge.core.errors import BridgeError
from bridge.core.printable import printable
from bridge.home.files import write_file
from bridge.reports.render import FORMATS, render
from bridge.reports.render.json import ReportFormatError, from_json
from bridge.reports.render.text import text_renderables


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
@force_option
@click.pass_obj
def reconcile(obj: Ctx, peer: str | None, quota: int | None, fmt: str,
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
    with reporting():
        data = obj.client().reconcile(peer=peer, quota=quota)
        try:
            report = from_json(data)
        except ReportFormatError as err:  # a daemon of another version
            raise BridgeError(f"the daemon's report could not be read: {printable(err)}",
                              code="invalid_response") from err
    if output is None and fmt == "text":
        console = Console(highlight=False, soft_wrap=False)
        if console.is_terminal:  # people at a terminal get colour, at their width
            console.print(Group(*text_renderables(report)))
            return
    text = render(report, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    with reporting():
        write_file(output, text, replace=force)
    click.echo(f"wrote the {fmt} reconciliation report to {output}", err=True)


__all__ = ["reconcile"]
