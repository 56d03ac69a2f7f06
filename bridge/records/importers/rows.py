"""Rows of a table, CSV or XLSX, numbered as a spreadsheet numbers them; the header row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from bridge.core.errors import InputError
from bridge.records.importers.csv_rows import csv_rows
from bridge.records.importers.limits import ImportLimitError, ImportLimits
from bridge.records.importers.xlsx_rows import xlsx_rows


def column_letter(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA: the column as a spreadsheet labels it."""
    n, letters = index + 1, ""
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("A") + r) + letters
    return letters


def table_rows(path: str, fmt: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    return csv_rows(path, limits) if fmt == "csv" else xlsx_rows(path, limits)


def blank(cell: Any) -> bool:
    return cell is None or (cell.__class__ is str and not cell.strip())


def header_name(cell: Any) -> str:
    """``" Date of birth "`` -> ``date_of_birth``: the field a header cell names."""
    text = "" if cell is None else str(cell)
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def read_header(rows: Iterator[tuple[int, list[Any]]], source: str, limits: ImportLimits
                ) -> tuple[int, list[Any]]:
    """The first non-blank row, without its trailing blank cells (a sheet's rows are as wide as
    its widest, or as its declared dimension), at most ``max_columns`` wide."""
    for n, cells in rows:
        if not all(blank(c) for c in cells):
            end = len(cells)
            while blank(cells[end - 1]):
                end -= 1
            cells = cells[:end]
            if len(cells) > limits.max_columns:
                raise ImportLimitError(source, f"the header has {len(cells):,} columns",
                                       limit="max_columns", value=limits.max_columns,
                                       where=f"row {n}")
            return n, cells
    raise InputError(f"{source} is empty: the first row must name the fields", field="file")


__all__ = ["blank", "column_letter", "header_name", "read_header", "table_rows"]
