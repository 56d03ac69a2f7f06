"""A roster or manifest from a file: CSV, XLSX or JSON, every row checked."""

from __future__ import annotations

from typing import Any

from bridge.core.errors import InputError, UsageError
from bridge.core.printable import quoted
from bridge.records.importers.formats import DOCUMENT_TYPES, Submission, file_format
from bridge.records.importers.json_files import json_submission
from bridge.records.importers.limits import LIMITS, ImportLimits
from bridge.records.importers.tables import table_records
from bridge.records.importers.xlsx_rows import xlsx_meta
from bridge.records.record_schemas import CATEGORIES, MANIFEST_ITEM, record_schema, roster_schema


def import_document(path: str, *, doc_type: str, category: str | None = None,
                    limits: ImportLimits = LIMITS, check: bool = True) -> Submission:
    """The items of a roster or manifest from ``path`` (CSV, XLSX or JSON), every row checked.

    A roster from a table needs its ``category`` (one of :data:`CATEGORIES`), which also goes
    into ``meta.category`` and into each record that has no category column. A JSON roster
    takes it from ``category`` or its own ``meta.category``; without one (or with a category
    that has no schema) it is sent as it is. A manifest's rows are manifest items.

    Raises :class:`ImportErrors` listing every bad row, or :class:`InputError` for a file that
    cannot be read at all.

    ``check=False``: a table's records are read and converted but not checked against their
    schema (``Submission.checked`` says so) -- for a caller that hands them to the daemon,
    whose check is the same, and checks them here only when the daemon refuses them. A JSON
    file is always checked.
    """
    if doc_type not in DOCUMENT_TYPES:
        raise InputError(f"unknown document type {quoted(doc_type)}", field="type")
    fmt = file_format(path)
    if fmt == "json":
        return json_submission(path, doc_type, category, limits)
    if doc_type == "roster":
        if category is None:
            raise UsageError(f"{path}: a roster from a CSV or XLSX file needs its category "
                             f"(--category {'|'.join(CATEGORIES)})")
        schema = roster_schema(category)
        records, rows = table_records(path, fmt, schema, {"category": category}, limits,
                                      check=check)
        return Submission(items=records, meta={**_sheet_meta(path, fmt, limits),
                                               "category": category},
                          format=fmt, schema=schema.name, rows=rows, checked=check)
    schema = record_schema(MANIFEST_ITEM)
    records, rows = table_records(path, fmt, schema, {}, limits, check=check)
    return Submission(items=records, meta=_sheet_meta(path, fmt, limits) or None, format=fmt,
                      schema=schema.name, rows=rows, checked=check)


def _sheet_meta(path: str, fmt: str, limits: ImportLimits) -> dict[str, Any]:
    """An XLSX workbook's ``meta`` sheet (batch, declared counts, ...); a CSV has none."""
    return (xlsx_meta(path, limits) or {}) if fmt == "xlsx" else {}


__all__ = ["import_document"]
