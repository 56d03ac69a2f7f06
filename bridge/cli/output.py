"""How the ``bridge`` commands print data: rich tables for people, plain aligned text for long
lists, JSON for scripts. Every cell and every JSON string passes through
:mod:`bridge.core.printable` (or :func:`bridge.reports.render.text.safe_text`, its rich form): text
from a peer or the daemon never reaches the terminal unescaped."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import click
from rich.console import Console
from rich.table import Table

from bridge.core.printable import json_text, printable
from bridge.reports.render.text import safe_text  # the one import of it in the command line

RICH_TABLE_MAX_ROWS = 500  # beyond this, plain aligned text (rich is slow on long tables)

def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def echo_json(value: object) -> None:
    click.echo(json_text(value))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A rich table of data: every cell a :func:`safe_text` (escaped, never markup)."""
    out = Table(*headers, box=None)
    for row in rows:
        out.add_row(*(safe_text(cell) for cell in row))
    return out


def plain_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Aligned columns without rich: rich takes about half a second per thousand rows.
    Cells are escaped (:func:`printable`) before they are measured."""
    rows = [tuple(printable(c) for c in r) for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    out = sys.stdout
    for row in (headers, *rows):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                  + "\n")
    out.flush()


def print_rows(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table of ``rows``: rich while it is short, plain text beyond RICH_TABLE_MAX_ROWS."""
    if len(rows) > RICH_TABLE_MAX_ROWS:
        plain_table(headers, rows)
        return
    console().print(table(headers, rows))


__all__ = ["RICH_TABLE_MAX_ROWS", "console", "echo_json", "plain_table",
           "print_rows", "safe_text", "table"]
