"""Import limits: every bound on what an import reads, and the error that names the one a file
passed (README, "Import limits")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.errors import InputError, UsageError

MIB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class ImportLimits:
    """Every bound on what an import reads, in one place (README, "Import limits").

    A file from a spreadsheet is data from outside: a CSV of one 200 MB line of empty cells, an
    XLSX whose shared strings inflate to 300 MB, or a sheet declaring 70 million empty rows
    would each take gigabytes if read whole. Each bound is checked while the file streams, before
    the data it guards is held in memory; an :class:`ImportLimitError` names the limit it hit
    (and the row or line). The defaults are far above a real roster (a few thousand rows, a
    dozen columns) and allow the largest document (``max_items``).
    """

    max_file_bytes: int = 512 * MIB   # a CSV or XLSX file as it is on disk
    max_rows: int = 1_048_576          # rows read, blank ones included (a spreadsheet's own
    #                                    maximum), the header row too
    max_items: int = 1_000_000         # records: the most items a document holds
    #                                    (document.schema.json)
    max_columns: int = 256             # header columns
    max_cells: int = 20_000_000        # cells read in all, blank ones included
    max_cell_chars: int = 100_000      # characters in one CSV cell: far above any field's limit
    max_line_chars: int = 1 * MIB     # characters in one CSV record (however many lines a
    #                                    quoted cell spans)
    max_zip_members: int = 10_000      # parts of an XLSX (a workbook has a few dozen)
    max_part_bytes: int = 8 * MIB     # inflated size of any other XLSX part (styles, the
    #                                    workbook...): each is parsed whole, into objects of
    #                                    about 1 KB per element (Excel's 64,000 styles fit)
    max_strings_bytes: int = 64 * MIB  # inflated size of the shared strings (read whole)
    max_shared_strings: int = 1_000_000  # shared strings (as many as a document has items)
    max_sheet_bytes: int = 1024 * MIB  # inflated size of a worksheet (it streams)
    max_inflate_ratio: int = 100       # inflated / compressed size of a part over 1 MiB (a zip
    #                                    bomb; ordinary sheets deflate about 10:1)
    max_json_bytes: int = 128 * MIB   # a JSON file or standard input
    max_json_containers: int = 5_000_000  # JSON arrays and objects in all
    max_json_depth: int = 64           # nesting of JSON arrays and objects

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if type(value) is not int or value < 1:
                raise UsageError(f"import limit {name} must be a positive whole number")


LIMITS = ImportLimits()


class ImportLimitError(InputError):
    """A file passed one of the :class:`ImportLimits`; ``limit`` names it. Nothing was read
    past that point, and nothing was imported."""

    code = "import_limit"

    def __init__(self, source: str, what: str, *, limit: str, value: int,
                 where: str | None = None) -> None:
        self.limit = limit
        at = f"{where}: " if where else ""
        message = f"{source}: {at}{what} (limit {limit} = {value:,}); nothing was imported"
        super().__init__(message, field=where or "file", code=self.code)
        self.message = self.detail = message  # the location is in it already


def check_file_size(path: str, limits: ImportLimits) -> None:
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", field="file") from exc
    if size > limits.max_file_bytes:
        raise ImportLimitError(path, f"the file is {size:,} bytes", limit="max_file_bytes",
                               value=limits.max_file_bytes)


def count_cells(n: int, row: list[Any], cells: int, source: str, limits: ImportLimits) -> int:
    """Cells read so far, with row ``n``; refused past ``max_rows`` rows or ``max_cells`` cells
    (blank ones count: a sheet of empty rows costs as much to read as any other)."""
    cells += len(row)
    if n > limits.max_rows:
        raise ImportLimitError(source, "too many rows (blank rows count too)",
                               limit="max_rows", value=limits.max_rows, where=f"row {n}")
    if cells > limits.max_cells:
        raise ImportLimitError(source, f"too many cells in all (this row has {len(row):,}; "
                               "blank cells count too)", limit="max_cells",
                               value=limits.max_cells, where=f"row {n}")
    return cells


__all__ = ["LIMITS", "MIB", "ImportLimitError", "ImportLimits", "check_file_size", "count_cells"]
