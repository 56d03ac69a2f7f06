"""The header row of a table: the column of each field, and what is wrong with the header
(an unknown, repeated or refused column; a required field that no column provides), said once
about the header, not once a row."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.records.dna import DNA_ADVICE, DNA_FIELD_NAME
from bridge.records.importers.cells import converter
from bridge.records.importers.problems import RowError
from bridge.records.importers.rows import column_letter, header_name
from bridge.records.record_schemas import (
    CATEGORIES,
    MANIFEST_ITEM,
    FieldInfo,
    RecordSchema,
    record_schema,
    roster_schema,
)

UNKNOWN_HEADER = "the header of this column is not a known field (is the first row a header?)"
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63})?\Z")


@dataclass(frozen=True, kw_only=True)
class Column:
    index: int
    letter: str
    name: str
    info: FieldInfo | None
    convert: Callable[[Any, FieldInfo | None], Any] | None
    parent: str | None  # "identification" for "identification.status"
    child: str


def header_columns(header: list[Any], hrow: int, schema: RecordSchema,
                   problems: list[RowError]) -> tuple[list[Column], set[int]]:
    """The header's columns, and the positions of unnamed or refused ones (their cells are
    ignored, the header problem reported once)."""
    columns: list[Column] = []
    skipped: set[int] = set()
    seen: dict[str, str] = {}
    known = list(schema.fields)
    unknown = 0  # columns unknown with no close match: the field list is said once for all
    for i, cell in enumerate(header):
        letter = column_letter(i)
        name = header_name(cell)
        info = schema.fields.get(name)

        # A header cell is named only when it is a field Bridge knows (in any record): a
        # file with no header row has a person's name and date of birth where it is due.
        said = name if name in known_names() else None

        def refuse(message: str, field: str | None = said, at: int = i) -> None:
            problems.append(RowError(row=hrow, column=column_letter(at), field=field,
                                     message=message))
            skipped.add(at)

        if not name:
            skipped.add(i)  # reported only if a row has a value in it
            continue
        if name in seen:
            refuse(f"the column {name} is named twice (also column {seen[name]})" if said
                   else f"the header of this column is also that of column {seen[name]}")
            continue
        seen[name] = letter
        dna = DNA_FIELD_NAME.search(name) if info is None else None
        if dna:  # named by the words of the rule that matched, which are Bridge's own
            refuse(DNA_ADVICE, field=dna.group())
            continue
        if info is None or info.kind == "object":
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if info is not None:
                refuse(f"{name} is a group of fields: name its parts ({name}.…) as columns")
                continue
            if not schema.open or close or not _FIELD_NAME.match(name) or "." in name:
                refuse(f"unknown column {name!r}{hint}" if said else f"{UNKNOWN_HEADER}{hint}")
                unknown += 0 if close else 1
                continue
        parent, _, child = name.rpartition(".")
        columns.append(Column(index=i, letter=letter, name=name, info=info,
                              convert=converter(info), parent=parent or None, child=child))
    if unknown:
        problems.append(RowError(row=hrow, field=None, message=_fields_once(
            schema, [n for n in map(header_name, header) if n])))
    return columns, skipped


@functools.cache
def known_names() -> frozenset[str]:
    """Every field of every record Bridge knows: the header cells an error may name."""
    schemas = [record_schema(MANIFEST_ITEM), *map(roster_schema, CATEGORIES)]
    return frozenset(name for schema in schemas for name in schema.fields)


def _fields_once(schema: RecordSchema, names: list[str]) -> str:
    """The fields the schema knows, said once; and the roster category whose fields hold
    every column of the header, when the one chosen does not."""
    fields = ", ".join(f for f, info in schema.fields.items() if info.kind != "object")
    said = f"the fields of {_label(schema)} are: {fields}"
    if schema.category is None:
        return said
    for category in CATEGORIES:
        other = roster_schema(category)
        if category != schema.category and all(
                n in other.fields or n.split(".")[0] in other.fields for n in names):
            return (f"{said}. This header fits a {category} record: is the category "
                    f"{category} (--category {category})?")
    return said


def _label(schema: RecordSchema) -> str:
    return f"a {schema.category} record" if schema.category else "a manifest item"


def missing_columns(schema: RecordSchema, names: set[str], hrow: int,
                    defaults: Mapping[str, Any]) -> tuple[list[RowError], set[str]]:
    """Required fields that no column provides: said once about the header, not once a row."""
    problems, absent = [], set()
    have = names | set(defaults)
    groups = {n.split(".")[0] for n in have if "." in n}
    for f in schema.fields.values():
        parent = f.path.split(".")[0] if "." in f.path else None
        if not f.required or f.path in have or (parent is not None and parent not in groups):
            continue
        absent.add(f.path)
        problems.append(RowError(row=hrow, field=f.path,
                                 message=f"no {f.path} column: the field is required"))
    alts = schema.alternatives
    if alts and not any(a in have for a in alts):
        absent.update(alts)
        problems.append(RowError(row=hrow, field=alts[0], message=(
            f"no {' or '.join(alts)} column: one of them is required")))
    return problems, absent


__all__ = ["UNKNOWN_HEADER", "Column", "header_columns", "known_names", "missing_columns"]
