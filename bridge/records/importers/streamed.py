"""A CSV roster's records read from the file as they are sent (``bridge send``), never held
whole: the daemon checks and stages the first batches while the rest of the file is still being
read and converted here, and a file of a million rows needs no more memory than one of ten.

A streamed document announces its count first (schemas/local-api.yaml, ``DocumentStream``), so
the file is read twice: once to count its records (the rows with a value in a column that
makes a field, as the row loop of ``tables`` decides), then again to convert and send them. Any
surprise on the way -- a cell that does not convert, a value under no name, more or fewer
records than counted (the file changed between the two readings) -- raises
:class:`NotStreamed` from inside the stream: the request is cut off unfinished, the daemon
drops what it staged (nothing is committed), and the caller reads the file the ordinary way,
which lists every bad row.

The record checks are the daemon's (the same ``check_records``); this module only converts.
"""

from __future__ import annotations

import contextlib
import re
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from bridge.core.errors import InputError
from bridge.records.importers.csv_rows import delimiter_of
from bridge.records.importers.limits import LIMITS, ImportLimits
from bridge.records.importers.tables import Reading, Table, converted_rows, open_table
from bridge.records.record_schemas import roster_schema


class NotStreamed(InputError):
    """The file cannot be sent as it is read: read it whole instead (and list its bad rows)."""


_BLOCK = 1 << 20


def _quick_count(path: str, hrow: int, limits: ImportLimits) -> int | None:
    """The records after header row ``hrow``, counted a megabyte at a time without parsing
    the file: when no cell is quoted and no line ends in a lone CR, a row is a line, and a line
    with nothing but spaces and separators is blank. None when that does not hold (then the
    rows are counted as the row loop reads them). A count that is wrong all the same (a row
    whose only value is its category, or under a column with no name) is caught as the records
    are read: the stream is cut off (``NotStreamed``), never sent short or long."""
    with open(path, "rb") as f:
        head = f.read(limits.max_line_chars).split(b"\n", 1)[0].decode("utf-8", "replace")
        sep = delimiter_of(head).encode()
        blank = re.compile(rb"^[ \t\r" + re.escape(sep) + rb"]*$", re.MULTILINE)
        f.seek(0)
        lines = nonblank = 0
        rest = b""
        while block := f.read(_BLOCK):
            block = rest + block
            if b'"' in block or block.count(b"\r") != block.count(b"\r\n"):
                return None
            end = block.rfind(b"\n") + 1
            whole, rest = block[:end], block[end:]
            if len(rest) > limits.max_line_chars:
                return None
            if whole:  # its lines, and one empty match after its last end of line
                n = whole.count(b"\n")
                lines += n
                nonblank += n - len(blank.findall(whole)) + 1
        if rest.strip(b" \t" + sep):
            lines, nonblank = lines + 1, nonblank + 1
    # The header and the blank rows before it are the first ``hrow`` lines, all but one blank.
    return nonblank - 1 if lines >= hrow else None


def _counted(table: Table, defaults: Mapping[str, Any]) -> int:
    """The records the rows make: a row is one when a column that makes a field of its own (not
    one the defaults already fill) has a value, which is when the row loop keeps it. Most rows
    are decided by their first such cell."""
    keyed = [c.index for c in table.columns if (c.parent or c.name) not in defaults]
    count = 0
    for _n, cells in table.rows:
        width = len(cells)
        for i in keyed:
            if i < width:
                cell = cells[i]
                if cell is not None and (cell.__class__ is not str or cell.strip()):
                    count += 1
                    break
    return count


class RosterStream:
    """The records of a CSV roster of ``category``, read as they are iterated (each iteration
    reads the file again, so a refused try can be sent again); ``len`` is their count and
    ``rows[n]`` the row of record ``n`` once it has been read."""

    def __init__(self, path: str, category: str, count: int, limits: ImportLimits) -> None:
        self.path, self.category, self.count, self.limits = path, category, count, limits
        self.defaults = {"category": category}
        self.rows: array[int] = array("L")

    def __len__(self) -> int:
        return self.count

    def row_of(self, n: int) -> int | None:
        """The row of record ``n`` (the file read on to it, if it has not been yet)."""
        if n >= len(self.rows):
            with contextlib.suppress(NotStreamed):
                for _ in self:
                    if len(self.rows) > n:
                        break
        return self.rows[n] if 0 <= n < len(self.rows) else None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        table = open_table(self.path, "csv", roster_schema(self.category), self.defaults,
                           self.limits)
        self.rows = rows = array("L")
        reading = Reading()
        for n, record in converted_rows(table, self.defaults, self.limits, reading):
            if reading.cell_bad or len(rows) == self.count:
                raise NotStreamed(f"{self.path}: row {n} cannot be sent as it is read",
                                  field=f"row {n}")
            rows.append(n)
            yield record
        if reading.cell_bad or len(rows) != self.count:
            raise NotStreamed(f"{self.path}: {len(rows)} records read, {self.count} counted",
                              field="file")


def roster_stream(path: str, category: str, limits: ImportLimits = LIMITS
                  ) -> RosterStream | None:
    """The records of the CSV roster ``path`` as a stream, counted; None when its header has a
    problem (the ordinary import says which) or it has no record."""
    defaults = {"category": category}
    table = open_table(path, "csv", roster_schema(category), defaults, limits)
    if table.head_problems:
        return None
    count = _quick_count(path, table.hrow, limits)
    if count is None:
        count = _counted(table, defaults)
    return RosterStream(path, category, count, limits) if count else None


__all__ = ["NotStreamed", "RosterStream", "roster_stream"]
