"""Rows of a CSV file, read within the import limits: no record longer than ``max_line_chars``
is ever buffered, no cell longer than ``max_cell_chars`` is ever built."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from bridge.core.errors import InputError
from bridge.records.importers.limits import (
    ImportLimitError,
    ImportLimits,
    check_file_size,
    count_cells,
)


class _RecordTooLong(Exception):
    """Raised through csv.reader by :func:`_bounded_lines`."""


def _bounded_lines(f: Any, limit: int, used: list[int]) -> Iterator[str]:
    """The lines of a text file for csv.reader, each read with ``readline(n)`` so that no more
    than ``limit`` characters of one record (a row, however many lines its quoted cells span)
    are ever buffered: a 200 MB line is refused after its first ``limit`` characters, before
    csv splits it into cells. ``used[0]`` counts the record's characters; the caller resets it
    after each record. (A generator with a list cell: the cheapest per-line check there is.)"""
    readline = f.readline
    while line := readline(limit - used[0] + 1):
        used[0] += len(line)
        if used[0] > limit:
            raise _RecordTooLong
        yield line


def delimiter_of(first: str) -> str:
    """Comma, or the semicolon or tab that a header without a comma is separated by."""
    if "," in first:
        return ","
    return ";" if ";" in first else ("\t" if "\t" in first else ",")


def csv_rows(path: str, limits: ImportLimits) -> Iterator[tuple[int, list[Any]]]:
    """Rows of a CSV file, numbered as a spreadsheet numbers them (one per record, however
    many lines a quoted cell spans). UTF-8, with or without the byte-order mark that Excel
    writes; comma-separated, or semicolon- or tab-separated when the header says so (as
    spreadsheets set to some locales save)."""
    check_file_size(path, limits)
    # csv's own cell limit is process-wide: set for this read, restored when it ends.
    previous = csv.field_size_limit(limits.max_cell_chars)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            delimiter = delimiter_of(f.readline(limits.max_line_chars))
            f.seek(0)  # resets the decoder too: the byte-order mark is skipped again
            used = [0]
            reader = csv.reader(_bounded_lines(f, limits.max_line_chars, used),
                                delimiter=delimiter)
            n = cells = 0
            try:
                for n, row in enumerate(reader, start=1):
                    used[0] = 0
                    cells = count_cells(n, row, cells, path, limits)
                    yield n, row
            except _RecordTooLong:
                raise ImportLimitError(path, "a row longer than the limit", where=(
                    f"row {n + 1} (line {reader.line_num + 1})"), limit="max_line_chars",
                    value=limits.max_line_chars) from None
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise ImportLimitError(path, "a cell longer than the limit",
                                           where=f"row {n + 1}", limit="max_cell_chars",
                                           value=limits.max_cell_chars) from None
                raise InputError(f"{path}: line {reader.line_num} cannot be read as CSV: "
                                 f"{exc}", field=f"line {reader.line_num}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (in the spreadsheet, save as \"CSV UTF-8\")",
                         field="file") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    finally:
        csv.field_size_limit(previous)


__all__ = ["csv_rows", "delimiter_of"]
