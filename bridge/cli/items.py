"""``bridge items``: the items of one document and the status of each."""

from __future__ import annotations

from typing import Any

import click

from bridge.cli.context import Ctx
from bridge.cli.exits import reporting
from bridge.cli.options import json_option
from bridge.cli.output import echo_json, print_rows
from bridge.core.documents import ACK_STATUSES
from bridge.core.printable import printable

HEADERS = ("#", "ID", "STATUS", "REASON", "EVIDENCE", "UPDATED")


def _status_filter(text: str | None) -> str | None:
    """Acknowledgement statuses are upper case, transport states lower case: accept either."""
    if text is None:
        return None
    return text.upper() if text.upper() in ACK_STATUSES else text.lower()


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    return (str(row.get("index")), str(row.get("id")), str(row.get("status")),
            str(row.get("reason") or ""), str(row.get("evidence") or ""),
            str(row.get("updated") or ""))


@click.command("items")
@click.argument("doc")
@click.option("--status", "status_", metavar="S",
              help="Only items with this acknowledgement status or transport state.")
@click.option("--direction", type=click.Choice(["in", "out"]),
              help="Needed only if DOC exists both as sent and as received.")
@json_option
@click.pass_obj
def items_cmd(obj: Ctx, doc: str, status_: str | None, direction: str | None,
              as_json: bool) -> None:
    """List the items of DOC with their current status."""
    client = obj.client()
    with reporting(as_json=as_json):
        rows = list(client.iter_items(doc, status=_status_filter(status_),
                                      direction=direction))
    if as_json:
        echo_json({"items": rows})
        return
    if not rows:
        click.echo("No items." if status_ is None else
                   f"No items with status {printable(status_)}.")
        return
    print_rows(HEADERS, [_cells(r) for r in rows])


__all__ = ["items_cmd"]
