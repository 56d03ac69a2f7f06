"""Tables of records: every row of a CSV or XLSX file converted by its record schema and
checked, every bad row named by its row, column and field."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.records.categories import check_records
from bridge.records.importers.cells import BOOLEAN_WORDS, CellError, as_text
from bridge.records.importers.columns import Column, header_columns, missing_columns
from bridge.records.importers.limits import ImportLimitError, ImportLimits
from bridge.records.importers.problems import MAX_LISTED, ImportErrors, RowError
from bridge.records.importers.rows import (
    blank,
    column_letter,
    header_name,
    read_header,
    table_rows,
)
from bridge.records.record_errors import CheckResult
from bridge.records.record_schemas import FieldInfo, RecordSchema

# A flat column as the hot loop reads it: position, field name, converter (None for text), field,
# and for a boolean the spellings it takes (one dictionary look-up instead of a call).
_Flat = tuple[int, str, Callable[[Any, FieldInfo | None], Any] | None, FieldInfo | None,
              Mapping[str, bool] | None]


@dataclass(kw_only=True)
class Reading:
    """What the row loop gathers: the records, the row each came from, and the cells that did
    not convert. Problems are kept up to the number listed (a file of a million bad cells must
    not hold a million descriptions); every bad row is still counted."""

    records: list[dict[str, Any]] = field(default_factory=list)
    row_of: list[int] = field(default_factory=list)
    cell_problems: list[RowError] = field(default_factory=list)
    cell_bad: set[int] = field(default_factory=set)  # row numbers
    unnamed: list[tuple[int, int]] = field(default_factory=list)  # (row, column position) of
    #                                                               values under no name

    def bad_cell(self, n: int, letter: str, name: str, exc: CellError) -> None:
        # The cell is kept as it is: the schema then fails on the same field, and that second
        # report is dropped in favour of this one (see _merge).
        if len(self.cell_problems) < MAX_LISTED:
            self.cell_problems.append(RowError(row=n, column=letter, field=name,
                                               message=str(exc)))
        self.cell_bad.add(n)


@dataclass(frozen=True, kw_only=True)
class Table:
    """A table opened: its rows (after the header) as they are read, the header's columns and
    what is wrong with the header itself."""

    source: str
    rows: Iterator[tuple[int, list[Any]]]
    hrow: int
    width: int
    columns: list[Column]
    blank_names: list[int]  # positions of columns with no name
    head_problems: list[RowError]
    absent: set[str]  # required fields no column provides


def open_table(path: str, fmt: str, schema: RecordSchema, defaults: Mapping[str, Any],
               limits: ImportLimits) -> Table:
    """Read the header of a CSV or XLSX file and find each column's field."""
    rows = table_rows(path, fmt, limits)
    hrow, header = read_header(rows, path, limits)
    head_problems: list[RowError] = []
    columns, skipped = header_columns(header, hrow, schema, head_problems)
    missing, absent = missing_columns(schema, {c.name for c in columns}, hrow, defaults)
    head_problems.extend(missing)
    blank_names = [i for i in skipped if header_name(header[i]) == ""]
    return Table(source=path, rows=rows, hrow=hrow, width=len(header), columns=columns,
                 blank_names=blank_names, head_problems=head_problems, absent=absent)


def table_records(path: str, fmt: str, schema: RecordSchema, defaults: Mapping[str, Any],
                  limits: ImportLimits, *, check: bool = True
                  ) -> tuple[list[dict[str, Any]], list[int]]:
    """The records of a CSV or XLSX file, each field converted by ``schema`` and every record
    checked by it; ``defaults`` go into every record; and the row each record came from.
    Raises :class:`ImportErrors` naming every bad row (its row, column and field), and nothing
    is returned unless every row is good.

    ``check=False`` leaves the record checks to the daemon, which makes them anyway (the same
    ``check_records``): the header and every cell are still read and converted here, and a file
    with a bad one is checked whole, so that all its bad rows are listed at once."""
    table = open_table(path, fmt, schema, defaults, limits)
    head_problems, columns = table.head_problems, table.columns
    reading = Reading()
    for n, record in converted_rows(table, defaults, limits, reading):
        reading.records.append(record)
        reading.row_of.append(n)
    unnamed_problems(table, reading)
    records, row_of = reading.records, reading.row_of
    if not (check or head_problems or reading.cell_problems or reading.cell_bad):
        return records, row_of
    result = check_records(schema, records, limit=MAX_LISTED)
    row_problems = _table_errors(result, row_of, columns, table.absent)
    problems = _merge(head_problems, reading.cell_problems, row_problems)
    bad_rows = len({row_of[i] for i in result.bad} | reading.cell_bad)
    if problems or bad_rows:
        raise ImportErrors(path, problems[:MAX_LISTED], bad_rows=bad_rows,
                           header=bool(head_problems))
    return records, row_of


def unnamed_problems(table: Table, reading: Reading) -> None:
    for n, i in reading.unnamed:
        # A value under no name would be silently dropped: say so instead.
        reading.cell_problems.append(RowError(row=n, column=column_letter(i), message=(
            f"a value in a column with no name in row {table.hrow}: name the column, or clear "
            "it")))


def converted_rows(table: Table, defaults: Mapping[str, Any], limits: ImportLimits,
                   reading: Reading) -> Iterator[tuple[int, dict[str, Any]]]:
    """The row loop: one record per non-blank row, its cells converted (not yet checked), with
    its row; the cells that did not convert, and values under no name, noted in ``reading``."""
    columns, width, blank_names = table.columns, table.width, table.blank_names
    flat: list[_Flat] = [
        (c.index, c.name, c.convert, c.info,
         BOOLEAN_WORDS if c.info is not None and c.info.kind == "boolean" else None)
        for c in columns if c.parent is None]
    nested = [c for c in columns if c.parent is not None]
    max_chars = limits.max_cell_chars
    base = len(defaults)
    made = 0
    for n, cells in table.rows:
        if len(cells) < width:
            cells = cells + [None] * (width - len(cells))
        elif len(cells) > width:
            _unnamed(reading, n, range(width, len(cells)), cells)
        if blank_names:
            _unnamed(reading, n, blank_names, cells)
        record = dict(defaults)
        _flat_fields(record, cells, flat, n, max_chars, reading)
        if nested:
            _nested_fields(record, cells, nested, n, reading)
        if len(record) == base:
            continue  # a blank row (often trailing ones): not a record
        if made >= limits.max_items:
            raise ImportLimitError(table.source, "too many records", limit="max_items",
                                   value=limits.max_items, where=f"row {n}")
        made += 1
        yield n, record


def _flat_fields(record: dict[str, Any], cells: list[Any], flat: Sequence[_Flat], n: int,
                 max_chars: int, reading: Reading) -> None:
    """The hot loop: 100,000 rows of a dozen cells each. Text (most cells) is handled inline,
    booleans by one dictionary look-up; only other types pay for a function call."""
    for i, name, convert, info, words in flat:
        cell = cells[i]
        if cell.__class__ is str:
            cell = cell.strip()
            if not cell:
                continue
            if convert is None:
                record[name] = cell if len(cell) <= max_chars else cell[:max_chars]
                continue
            if words is not None and cell in words:
                record[name] = words[cell]
                continue
        elif cell is None:
            continue
        if convert is not None:
            try:
                cell = convert(cell, info)
            except CellError as exc:
                reading.bad_cell(n, column_letter(i), name, exc)
        else:
            cell = as_text(cell, info)
        if cell.__class__ is str and len(cell) > max_chars:
            cell = cell[:max_chars]  # the schema's length limit reports it
        record[name] = cell


def _nested_fields(record: dict[str, Any], cells: list[Any], nested: Sequence[Column], n: int,
                   reading: Reading) -> None:
    """Columns such as ``identification.status``: each fills a field of its group."""
    for c in nested:
        cell = cells[c.index]
        if blank(cell):
            continue
        value = cell.strip() if cell.__class__ is str else cell
        if c.convert is not None:
            try:
                value = c.convert(value, c.info)
            except CellError as exc:
                reading.bad_cell(n, c.letter, c.name, exc)
        elif value.__class__ is not str:
            value = as_text(value, c.info)
        assert c.parent is not None
        group = record.setdefault(c.parent, {})
        if isinstance(group, dict):
            group[c.child] = value


def _unnamed(reading: Reading, n: int, positions: Iterable[int], cells: list[Any]) -> None:
    """Values of row ``n`` under no name: the row is bad, and the first few are described."""
    for i in positions:
        if not blank(cells[i]):
            reading.cell_bad.add(n)
            if len(reading.unnamed) < MAX_LISTED:
                reading.unnamed.append((n, i))


def _table_errors(result: CheckResult, row_of: Sequence[int], columns: Sequence[Column],
                  absent: set[str]) -> list[RowError]:
    by_name = {c.name: c for c in columns}
    out = []
    for e in result.errors:
        if e.code == "missing" and e.field in absent:
            continue  # the header row already says the whole column is missing
        name = re.sub(r"\[\d+\]", "", e.field)
        col = by_name.get(name) or next(
            (c for c in columns if c.parent is not None and c.parent == name), None)
        message = e.message
        if e.code == "duplicate_id" and e.first is not None:
            message += f" (first on row {row_of[e.first]})"
        out.append(RowError(row=row_of[e.index], column=col.letter if col else None,
                            field=name or None, message=message))
    return out


def _merge(head: list[RowError], cells: list[RowError], rows: list[RowError]
           ) -> list[RowError]:
    """Header problems first, then row by row in column order; one problem per cell (a cell
    that did not convert is not reported a second time by the schema)."""
    seen: set[tuple[int | None, str | None]] = set()
    body = []
    for e in [*cells, *rows]:
        key = (e.row, e.field or e.column)
        if key in seen:
            continue
        seen.add(key)
        body.append(e)
    body.sort(key=lambda e: (e.row or 0, len(e.column or ""), e.column or ""))
    return [*head, *body]


__all__ = ["Reading", "Table", "converted_rows", "open_table", "table_records",
           "unnamed_problems"]
