"""How the ``bridge`` commands print data: rich tables for people, plain aligned text for long
lists, JSON for scripts. Every cell and every JSON string passes through
:mod:`bridge.core.printable` (or :func:`bridge.reports.render.text.safe_text`, its rich form): text
from a peer or the daemon never reaches the terminal unescaped."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click

from bridge.core.printable import json_text, printable

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table
    from rich.text import Text

# rich (and the reports' renderer) are imported by the functions that print with them, when
# they do: a command that prints JSON or one line (``bridge send``) does not load them.

RICH_TABLE_MAX_ROWS = 500  # beyond this, plain aligned text (rich is slow on long tables)

def safe_text(value: object, style: str = "") -> Text:
    """:func:`bridge.reports.render.text.safe_text` (the one use of it in the command line):
    a cell escaped for the terminal, never read as markup."""
    from bridge.reports.render.text import safe_text as escaped

    return escaped(value, style)


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def echo_json(value: object) -> None:
    click.echo(json_text(value))


# Columns whose cells a user types back (a document id, a status, a peer's name): never cut
# nor wrapped. Other columns wrap between words to give way; no cell ends in an ellipsis.
WHOLE_COLUMNS = frozenset({"#", "ID", "ACK", "NAME", "PEER", "STATUS"})


class Fitted:
    """A table that never cuts a cell: printed as a table when its columns fit the terminal
    with every word whole, else as one block of ``HEADER  value`` lines per row."""

    def __init__(self, headers: Sequence[str], cells: list[list[Text]]) -> None:
        self.headers = tuple(headers)
        self.cells = cells

    @property
    def row_count(self) -> int:
        return len(self.cells)

    def _table(self) -> Table:
        from rich.table import Table

        out = Table(box=None)
        for i, header in enumerate(self.headers):
            if header in WHOLE_COLUMNS:
                widest = max([len(header), *(c[i].cell_len for c in self.cells)])
                out.add_column(header, no_wrap=True, min_width=widest)
            else:
                out.add_column(header, overflow="fold")
        for row in self.cells:
            out.add_row(*row)
        return out

    def _narrowest(self) -> int:
        """The width of the table with every word whole: each column as wide as its longest
        word (its longest cell for the whole columns), plus one space either side."""
        total = 0
        for i, header in enumerate(self.headers):
            texts = [header, *(c[i].plain for c in self.cells)]
            if header in WHOLE_COLUMNS:
                total += max(len(t) for t in texts)
            else:
                total += max((len(w) for t in texts for w in t.split()), default=0)
        return total + 2 * len(self.headers)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        if self._narrowest() <= options.max_width:
            yield self._table()
            return
        width = max(len(h) for h in self.headers)
        for n, row in enumerate(self.cells):
            if n:
                yield Text("")
            for header, cell in zip(self.headers, row, strict=True):
                yield Text.assemble(Text(f"{header:<{width}}  ", style="bold"), cell)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Fitted:
    """A table of data: every cell a :func:`safe_text` (escaped, never markup), none cut."""
    return Fitted(headers, [[safe_text(cell) for cell in row] for row in rows])


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


__all__ = ["RICH_TABLE_MAX_ROWS", "Fitted", "console", "echo_json", "plain_table",
           "print_rows", "safe_text", "table"]
