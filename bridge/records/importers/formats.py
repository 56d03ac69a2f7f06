"""What an import reads (a file recognised by its extension) and what it gives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.errors import InputError

# The document types (``bridge.core.documents.DOCUMENT_TYPES``, equal by test), named here so
# that reading a file, and ``bridge send``'s options, do not import the document code and the
# cryptography it needs.
DOCUMENT_TYPES = ("roster", "manifest")
FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json"}
TABLE_FORMATS = ("csv", "xlsx")


@dataclass(frozen=True, kw_only=True)
class Submission:
    """The items (and meta) of a roster or manifest read from a file, every row good (or, with
    ``checked`` False, every row read and converted: see ``import_document``).

    ``schema`` names the record schema the items were checked against, or is None when the
    items are generic (a JSON roster of no known category, manifest items without a kind):
    those are sent as they are, as before record schemas existed.
    """

    items: list[dict[str, Any]]
    meta: dict[str, Any] | None
    format: str
    schema: str | None
    rows: Sequence[int] = ()  # a table's: the row (as a spreadsheet numbers it) of each item
    checked: bool = True  # False: read and converted, the record checks left to the daemon


def file_format(path: str) -> str:
    """``csv``, ``xlsx`` or ``json``, from the extension ("-", standard input, is JSON)."""
    if path == "-":
        return "json"
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    if suffix in (".xls", ".ods", ".numbers"):
        raise InputError(f"{path}: {suffix} files are not read; save it as .xlsx or .csv",
                         field="file")
    raise InputError(f"{path}: unknown file type {suffix or '(no extension)'!r}; use .csv, "
                     ".xlsx or .json", field="file")


__all__ = ["DOCUMENT_TYPES", "FORMATS", "TABLE_FORMATS", "Submission", "file_format"]
