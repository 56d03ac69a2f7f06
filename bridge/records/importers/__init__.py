"""Imports: CSV, XLSX and JSON files into the items of a roster or manifest, and spreadsheets of
acknowledgements. Commissions keep their lists in spreadsheets (DESIGN §5).

A file is recognised by its extension. In a table the first non-blank row is the header: it
names the fields (``Date of birth`` reads as ``date_of_birth``; ``identification.status`` fills
a nested field). Cells convert by the record schema's types: whole numbers, true/false (also
yes/no, 1/0), lists split on ``;``, everything else text with the surrounding spaces removed; a
blank cell is an absent field.

Every problem is reported with its row as a spreadsheet shows it (the header is row 1), its
column (letter and field name) and what is wrong: all bad rows, not just the first (the first
:data:`MAX_LISTED` problems are described, every bad row is counted). Nothing is returned unless
every row is good: :class:`ImportErrors` lists them instead.

The modules, in the order a file goes through them: ``formats`` (which reader, what an import
gives), ``limits`` (every bound on what is read), ``csv_rows`` and ``xlsx_rows`` (rows as they
stream, the zip checked before openpyxl opens it), ``rows`` (the header row), ``columns`` (the
field of each column), ``cells`` (a cell converted by its field's type), ``tables`` (the records
of a table, checked), ``json_files``, ``document`` and ``acks`` (the entry points), ``problems``
(each bad row by its row, column and field).

Pure: no asyncio, aiohttp or sqlite3; the only I/O is reading the one file named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.records.importers.acks import ACK_COLUMNS, import_acks, import_acks_rows
    from bridge.records.importers.document import import_document
    from bridge.records.importers.formats import (
        DOCUMENT_TYPES,
        FORMATS,
        Submission,
        file_format,
    )
    from bridge.records.importers.json_files import load_json_submission, load_json_value
    from bridge.records.importers.limits import LIMITS, ImportLimitError, ImportLimits
    from bridge.records.importers.problems import MAX_LISTED, ImportErrors, RowError
    from bridge.records.importers.rows import header_name

# Each name's module, imported when the name is first asked for (PEP 562): ``bridge send`` reads
# a CSV without the acknowledgement importer and the document code it needs, and every command
# that only names ImportErrors (bridge/cli/exits.py) loads nothing but ``problems``.
_HOME = {
    "ACK_COLUMNS": "acks", "import_acks": "acks", "import_acks_rows": "acks",
    "import_document": "document", "DOCUMENT_TYPES": "formats", "FORMATS": "formats",
    "Submission": "formats", "file_format": "formats", "load_json_submission": "json_files",
    "load_json_value": "json_files", "LIMITS": "limits", "ImportLimitError": "limits",
    "ImportLimits": "limits", "MAX_LISTED": "problems", "ImportErrors": "problems",
    "RowError": "problems", "header_name": "rows",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["ACK_COLUMNS", "DOCUMENT_TYPES", "FORMATS", "LIMITS", "MAX_LISTED", "ImportErrors",
           "ImportLimitError", "ImportLimits", "RowError", "Submission",
           "file_format", "header_name", "import_acks", "import_acks_rows", "import_document",
           "load_json_submission", "load_json_value"]
