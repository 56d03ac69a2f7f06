"""The record fields of a declared entry that the store keeps in columns of their own: a
manifest entry's ``category`` and ``roster_record`` (PROTOCOL.md: an entry is
``{"data": {...}, ...}``), by which reconciliation groups and files it.

One rule, used where an entry is stored, where old rows are filled (migration 4) and where the
store check compares the columns with the signed bytes. Pure: bytes in, fields out.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

# The msgpack fixstr encodings of the two keys. An entry is decoded only when its bytes hold
# one of them: most entries hold neither, and decoding each would cost as much as the rest of
# storing it.
_CATEGORY = b"\xa8category"
_ROSTER_RECORD = b"\xadroster_record"


def _record(leaf: bytes) -> dict[str, Any]:
    """The entry's record, {} if the bytes are not an entry with one. The stored bytes were
    checked when they were stored; anything odd simply has no such field."""
    try:
        data = msgpack.unpackb(leaf, raw=False)["data"]
    except Exception:  # optional fields: never fail a store or a report on one entry
        return {}
    return data if isinstance(data, dict) else {}


def _text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) and value else None


def record_fields(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """``entry_fields`` of the entry a record makes, from the record itself (its top-level
    text fields are the entry's, as signed): for a caller that holds the record, so that the
    entry need not be decoded again."""
    return _text(record, "category"), _text(record, "roster_record")


def records_fields(records: Sequence[Mapping[str, Any]]
                   ) -> tuple[list[str | None], list[str | None]]:
    """``record_fields`` of each record, as two columns (category, roster_record): looked up
    by C loops when every value is text or absent, as a received chunk's records are."""
    columns = []
    for name in ("category", "roster_record"):
        values = list(map(operator.methodcaller("get", name), records))
        if not set(map(type, values)) <= _TEXT_OR_NONE or "" in values:
            values = [_text(r, name) for r in records]
        columns.append(values)
    return columns[0], columns[1]


_TEXT_OR_NONE = frozenset({str, type(None)})


def entry_fields(leaf: bytes) -> tuple[str | None, str | None]:
    """(category, roster_record) of a manifest entry: each a non-empty text field of its
    record, else None."""
    has_category, has_roster_record = _CATEGORY in leaf, _ROSTER_RECORD in leaf
    if not (has_category or has_roster_record):
        return None, None
    record = _record(leaf)
    return (_text(record, "category") if has_category else None,
            _text(record, "roster_record") if has_roster_record else None)


__all__ = ["entry_fields", "record_fields", "records_fields"]
