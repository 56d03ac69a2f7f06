"""Acknowledgements from a spreadsheet: one row per item, ``id,status,reason[,evidence]``."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from bridge.core.documents import ACK_STATUSES, AckItem
from bridge.core.errors import InputError
from bridge.core.printable import quoted
from bridge.records.importers.cells import as_text
from bridge.records.importers.columns import UNKNOWN_HEADER
from bridge.records.importers.formats import TABLE_FORMATS, file_format
from bridge.records.importers.limits import LIMITS, ImportLimitError, ImportLimits
from bridge.records.importers.problems import MAX_LISTED, ImportErrors, RowError
from bridge.records.importers.rows import (
    blank,
    column_letter,
    header_name,
    read_header,
    table_rows,
)

ACK_COLUMNS = ("id", "status", "reason", "evidence")


def import_acks(path: str, *, limits: ImportLimits = LIMITS) -> list[dict[str, str]]:
    """Acknowledgements from a spreadsheet (CSV or XLSX) with the columns
    ``id,status,reason[,evidence]``: one row per item. Statuses may be in any case."""
    return import_acks_rows(path, limits=limits)[0]


def import_acks_rows(path: str, *, limits: ImportLimits = LIMITS
                     ) -> tuple[list[dict[str, str]], list[int]]:
    """``import_acks``, with the row each acknowledgement came from (so that what the daemon
    finds wrong with ``items[n]`` is told by the row of the sheet)."""
    fmt = file_format(path)
    if fmt not in TABLE_FORMATS:
        raise InputError(f"{path}: acknowledgements are read from a .csv or .xlsx file",
                         field="file")
    rows = table_rows(path, fmt, limits)
    hrow, header = read_header(rows, path, limits)
    problems: list[RowError] = []
    index = _ack_columns(header, hrow, problems)
    items: list[dict[str, str]] = []
    row_of: list[int] = []
    bad_rows: set[int] = set()
    # Without an id or a status column no row can be read: the header problem says it all.
    if "id" in index and "status" in index:
        items = _ack_rows(rows, index, problems, bad_rows, path, limits, row_of)
    if not items and not problems:
        problems.append(RowError(row=hrow + 1, message="no acknowledgements: the file has "
                                 "a header but no rows"))
    if problems:
        raise ImportErrors(path, problems[:MAX_LISTED], bad_rows=len(bad_rows),
                           header=any(p.row == hrow for p in problems))
    return items, row_of


def _ack_columns(header: list[Any], hrow: int, problems: list[RowError]) -> dict[str, int]:
    """Column name -> position, from the header row; its problems added to ``problems``."""
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        name = header_name(cell)
        if not name:
            continue
        if name not in ACK_COLUMNS:
            # Named by its position, never quoted: with no header row, the first row's
            # reason (free text about a person) is where a header is due.
            close = difflib.get_close_matches(name, ACK_COLUMNS, n=1, cutoff=0.7)
            hint = f"did you mean {close[0]!r}?" if close else "the columns are " + \
                ", ".join(ACK_COLUMNS)
            problems.append(RowError(row=hrow, column=column_letter(i),
                                     message=f"{UNKNOWN_HEADER}; {hint}"))
        elif name in index:
            problems.append(RowError(row=hrow, column=column_letter(i), field=name,
                                     message=f"the column {name} is named twice"))
        else:
            index[name] = i
    for required in ("id", "status"):
        if required not in index:
            problems.append(RowError(row=hrow, field=required,
                                     message=f"no {required} column: it is required"))
    return index


def _ack_rows(rows: Iterator[tuple[int, list[Any]]], index: Mapping[str, int],
              problems: list[RowError], bad_rows: set[int], path: str,
              limits: ImportLimits, row_of: list[int]) -> list[dict[str, str]]:
    """One acknowledgement per non-blank row; a bad row is counted in ``bad_rows`` and its
    problems added to ``problems`` (up to the number listed)."""
    items: list[dict[str, str]] = []
    first_row: dict[str, int] = {}
    for n, cells in rows:
        if all(blank(c) for c in cells):
            continue
        if len(items) >= limits.max_items:
            raise ImportLimitError(path, "too many records", limit="max_items",
                                   value=limits.max_items, where=f"row {n}")
        entry: dict[str, str] = {}
        for name, i in index.items():
            cell = cells[i] if i < len(cells) else None
            if not blank(cell):
                entry[name] = (cell.strip() if isinstance(cell, str)
                               else as_text(cell, None))
        row_problems = _ack_row_problems(entry, n, index, first_row)
        if row_problems:
            bad_rows.add(n)
            if len(problems) < MAX_LISTED:
                problems.extend(row_problems)
            continue
        if "status" in entry:
            entry["status"] = entry["status"].upper()
        first_row.setdefault(entry["id"], n)
        items.append(entry)
        row_of.append(n)
    return items


def _ack_row_problems(entry: Mapping[str, str], n: int, index: Mapping[str, int],
                      first_row: Mapping[str, int]) -> list[RowError]:
    def at(name: str, message: str) -> RowError:
        i = index.get(name)
        return RowError(row=n, column=None if i is None else column_letter(i), field=name,
                        message=message)

    problems = [at(name, "required field is missing") for name in ("id", "status")
                if name in index and name not in entry]
    if problems:
        return problems
    status = entry["status"].upper()
    if status not in ACK_STATUSES:
        # Named by row and column, never quoted: a shifted column can put a name here.
        return [at("status", f"unknown status; one of: {', '.join(ACK_STATUSES)}")]
    try:
        AckItem(id=entry["id"], status=status, reason=entry.get("reason"),
                evidence=entry.get("evidence"))
    except InputError as exc:
        return [at(exc.field or "id", exc.detail)]
    if entry["id"] in first_row:
        return [at("id", f"item {quoted(entry['id'])} is given twice (first on row "
                         f"{first_row[entry['id']]})")]
    return []


__all__ = ["ACK_COLUMNS", "import_acks"]
