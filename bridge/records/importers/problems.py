"""Problems of an import: each names its row, column and field (or its place in a JSON file);
every bad row is counted, the first :data:`MAX_LISTED` problems are described."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.core.errors import InputError

MAX_LISTED = 1000


@dataclass(frozen=True, kw_only=True)
class RowError:
    """One problem. In a table: ``row`` (the header is row 1), ``column`` (its letter) and
    ``field`` (its name). In a JSON file: ``index`` (position in ``items``) and ``field`` (a path
    inside the item)."""

    message: str
    row: int | None = None
    column: str | None = None
    field: str | None = None
    index: int | None = None

    def location(self) -> str:
        if self.row is not None:
            where = f"row {self.row}"
            if self.column is not None:
                where += f", column {self.column}" + (f" ({self.field})" if self.field else "")
            elif self.field:
                where += f", {self.field}"
            return where
        if self.index is not None:
            return f"items[{self.index}]" + (f".{self.field}" if self.field else "")
        return self.field or "file"

    def __str__(self) -> str:
        return f"{self.location()}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("row", self.row), ("column", self.column),
                                  ("field", self.field), ("index", self.index),
                                  ("message", self.message)) if v is not None}


class ImportErrors(InputError):
    """A file has bad rows; ``errors`` describes them (at most :data:`MAX_LISTED`) and
    ``bad_rows`` counts them all. Nothing was imported."""

    code = "invalid_rows"

    def __init__(self, source: str, errors: Sequence[RowError], *, bad_rows: int,
                 header: bool = False) -> None:
        self.errors = tuple(errors)
        self.bad_rows = bad_rows
        self.source = source
        what = [f"{bad_rows} bad row{'s' if bad_rows != 1 else ''}"] if bad_rows else []
        if header:
            what.insert(0, "a bad header row")
        summary = f"{source}: {' and '.join(what) or 'problems'}; nothing was imported"
        lines = [summary, *(f"  {e}" for e in self.errors)]
        if len(self.errors) >= MAX_LISTED:
            lines.append(f"  (only the first {MAX_LISTED} problems are listed)")
        super().__init__("\n".join(lines), code=self.code)


__all__ = ["MAX_LISTED", "ImportErrors", "RowError"]
