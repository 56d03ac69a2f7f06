"""Cells: a spreadsheet's value converted by the type of the field its column names (whole
numbers, true/false, lists split on ``;``, text)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from bridge.records.record_schemas import FieldInfo

LIST_SEPARATOR = ";"
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
# The spellings a spreadsheet produces (TRUE, Yes, no...), for a look-up without lower().
BOOLEAN_WORDS = {v: w in _TRUE for w in _TRUE | _FALSE
                 for v in (w, w.upper(), w.capitalize())}
_INTEGER = re.compile(r"[+-]?\d{1,18}\Z")


class CellError(Exception):
    """A cell that does not convert; the message says why (never with a sensitive value)."""


def as_text(cell: Any, info: FieldInfo | None) -> str:
    """A non-text XLSX cell in a text field: what the spreadsheet shows."""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, datetime.datetime):
        if (info is not None and info.date) or cell.time() == datetime.time():
            return cell.date().isoformat()
        return cell.isoformat(sep=" ")
    if isinstance(cell, datetime.date):
        return cell.isoformat()
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # 40037 typed as a number, stored as 40037.0
    return str(cell)


def _to_integer(cell: Any, info: FieldInfo | None) -> Any:
    if cell.__class__ is int:
        return cell
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    if cell.__class__ is str and _INTEGER.match(cell):
        return int(cell)
    raise CellError("must be a whole number")


def _to_boolean(cell: Any, info: FieldInfo | None) -> Any:
    if isinstance(cell, bool):
        return cell
    if cell.__class__ is int and cell in (0, 1):
        return bool(cell)
    word = str(cell).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise CellError("must be true or false (also yes/no, 1/0)")


def _to_list(cell: Any, info: FieldInfo | None) -> Any:
    text = cell if cell.__class__ is str else as_text(cell, info)
    return [part.strip() for part in text.split(LIST_SEPARATOR) if part.strip()]


def converter(info: FieldInfo | None) -> Callable[[Any, FieldInfo | None], Any] | None:
    """None for text (the common case, handled inline by the row loop)."""
    if info is None:
        return None
    return {"integer": _to_integer, "boolean": _to_boolean, "list": _to_list}.get(info.kind)


__all__ = ["BOOLEAN_WORDS", "LIST_SEPARATOR", "CellError", "as_text", "converter"]
