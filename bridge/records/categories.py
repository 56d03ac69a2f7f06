"""Checks of records against their schema: the four roster categories and manifest items
(DESIGN §6; the schemas themselves are described in :mod:`bridge.records.record_schemas`).

JSON Schema does the bulk of the checking (jsonschema_rs, in Rust). What it cannot say, one cheap
Python pass over the records adds:

- dates that match ``YYYY-MM-DD`` but do not exist (``2023-02-30``);
- raw DNA profiles (STR loci with allele numbers) in any text: only sample barcodes, match-report
  ids and the match statistic may be sent (:mod:`bridge.records.dna`);
- a field listed in ``withheld`` that is nevertheless present;
- duplicate record ids.

:func:`check_records` reports *every* problem (up to a limit) so that an import can list all bad
rows at once; :func:`validate_submission` is the daemon's check of a submitted document and
raises one :class:`InputError` naming ``items[i].field``. The names a check speaks of (the
categories, the schemas, the DNA advice) are exported here too, for the callers of the checks.

Pure: no I/O beyond reading the schema files once.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core.errors import InputError
from bridge.core.printable import quoted
from bridge.records.dna import (
    DNA_ADVICE,
    DNA_FIELD_NAME,
    dna_fields,
    dna_suspects,
    looks_like_str_profile,
)
from bridge.records.record_errors import CheckResult, RecordError, translate
from bridge.records.record_schemas import (
    CATEGORIES,
    MANIFEST_ITEM,
    MANIFEST_KINDS,
    FieldInfo,
    RecordSchema,
    record_schema,
    records_valid,
    roster_schema,
)

MAX_ERRORS = 1000
_PRIORITY = {"raw_dna": 0, "duplicate_id": 1}


def _real_date(text: str) -> bool:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass(kw_only=True)
class _Found:
    """The records a check looks at and the problems found so far. ``chosen`` are the records
    selected, ``positions[j]`` the index of ``chosen[j]`` among all records (what errors name);
    ``dicts`` are the chosen records that are maps, ``where[k]`` the position of ``dicts[k]``
    among the chosen."""

    positions: Sequence[int]
    chosen: Sequence[Any]
    dicts: Sequence[dict[str, Any]]
    where: Sequence[int]
    problems: dict[int, list[RecordError]] = field(default_factory=dict)  # by chosen position

    def index_of(self, k: int) -> int:
        return self.positions[self.where[k]]

    def add(self, k: int, name: str, code: str, message: str, first: int | None = None) -> None:
        """A problem of ``dicts[k]``, about its field ``name``."""
        self.problems.setdefault(self.where[k], []).append(RecordError(
            index=self.index_of(k), field=name, code=code, message=message, first=first))


def check_records(schema: RecordSchema, records: Sequence[Any], *,
                  limit: int = MAX_ERRORS,
                  select: Callable[[Any], bool] | None = None) -> CheckResult:
    """Every problem of every record: all of them counted, the first ``limit`` described.

    Messages name the field and the rule, never the value: errors promise no personal data
    (a command's output ends up in terminals and logs too), and the row and column find the
    cell.

    ``select`` skips the records it returns False for (a manifest checks only the items that
    declare a ``kind``). Each check is one pass over all records, cheap on the good path: one
    call into Rust for the whole list, one comprehension per date field, one text search for
    DNA. Only the bad records are then looked at one by one, and only the first ``limit`` of
    them are described (describing costs, and nobody reads ten thousand messages).
    """
    found = _records_to_check(records, select)
    # 1. The schema: the whole list in one call; record by record only if it fails.
    schema_bad = _schema_failures(schema, found)
    # 2. Duplicate ids.
    _duplicate_ids(found)
    # 3. Dates that match the pattern but do not exist.
    _impossible_dates(schema, found)
    # 4. Withheld fields that are present after all.
    _withheld_present(schema, found)
    # 5. Raw DNA profiles in any text.
    for k in dna_suspects(found.dicts, open_schema=schema.open, nested=schema.free_nested):
        for name in dna_fields(found.dicts[k]):
            found.add(k, name, "raw_dna", DNA_ADVICE)
    return _described(schema, found, schema_bad, limit)


def _records_to_check(records: Sequence[Any], select: Callable[[Any], bool] | None) -> _Found:
    """The records ``select`` chooses; those that are not maps are a problem already."""
    if select is None:
        positions: Sequence[int] = range(len(records))
        chosen: Sequence[Any] = records
    else:
        positions = [i for i, r in enumerate(records) if select(r)]
        chosen = [records[i] for i in positions]
    if not any(r.__class__ is not dict for r in chosen):
        return _Found(positions=positions, chosen=chosen, dicts=chosen,
                      where=range(len(chosen)))
    where = [j for j, r in enumerate(chosen) if r.__class__ is dict]
    found = _Found(positions=positions, chosen=chosen, dicts=[chosen[j] for j in where],
                   where=where)
    for j, r in enumerate(chosen):
        if r.__class__ is not dict:
            found.problems.setdefault(j, []).append(RecordError(
                index=positions[j], field="", code="not_a_record",
                message="must be an object of fields"))
    return found


def _schema_failures(schema: RecordSchema, found: _Found) -> set[int]:
    """Chosen positions of the records the schema refuses."""
    if records_valid(schema.name, found.dicts):
        return set()
    is_valid = schema.validator.is_valid
    return {found.where[k] for k, r in enumerate(found.dicts) if not is_valid(r)}


def _duplicate_ids(found: _Found) -> None:
    ids = [r.get("id") for r in found.dicts]
    if len(set(ids)) == len(ids):
        return
    first_at: dict[Any, int] = {}
    for k, rid in enumerate(ids):
        if rid.__class__ is not str:
            continue
        first = first_at.setdefault(rid, k)
        if first != k:
            found.add(k, "id", "duplicate_id", f"duplicate id {quoted(rid)}",
                      first=found.index_of(first))


def _impossible_dates(schema: RecordSchema, found: _Found) -> None:
    """Dates of the right form that do not exist: only a day after the 28th can be one."""
    for name in schema.date_fields:
        for k, r in enumerate(found.dicts):
            value = r.get(name)
            if (value.__class__ is str and len(value) == 10 and value[8:] > "28"
                    and not _real_date(value)):
                found.add(k, name, "bad_date",
                          "is not a date that exists (the day is past the end of its month)")


def _withheld_present(schema: RecordSchema, found: _Found) -> None:
    for k, r in enumerate(found.dicts):
        withheld = r.get("withheld")
        if withheld.__class__ is not list:
            continue
        for name in withheld:
            info = schema.fields.get(name) if isinstance(name, str) else None
            # A required field cannot be withheld: the schema says so on the list itself.
            if info is not None and not info.required and name in r:
                found.add(k, name, "withheld_present",
                          "is listed in withheld, so it must be absent (leave it empty, "
                          "or take it off the withheld list)")


def _described(schema: RecordSchema, found: _Found, schema_bad: set[int], limit: int
               ) -> CheckResult:
    """Every bad record counted; the problems of the first ones described, up to ``limit``."""
    bad = sorted(schema_bad | set(found.problems))
    chosen, positions = found.chosen, found.positions
    errors: list[RecordError] = []
    for j in bad:
        if len(errors) >= limit:
            break
        problems = []
        if j in schema_bad:
            for err in schema.validator.iter_errors(chosen[j]):
                problems.extend(translate(schema, positions[j], err, chosen[j]))
        problems.extend(found.problems.get(j, ()))
        errors.extend(_dedupe(problems))
    return CheckResult(errors=tuple(errors[:limit]), bad=frozenset(positions[j] for j in bad))


def _dedupe(found: list[RecordError]) -> list[RecordError]:
    """One problem per field: the most telling (a raw DNA profile before "unknown field")."""
    best: dict[str, RecordError] = {}
    for e in found:
        kept = best.get(e.field)
        if kept is None or _PRIORITY.get(e.code, 9) < _PRIORITY.get(kept.code, 9):
            best[e.field] = e
    return list(best.values())


# ---------------------------------------------------------------- the daemon's check


def _has_kind(item: Any) -> bool:
    return isinstance(item, dict) and "kind" in item


def check_submission(doc_type: str, meta: Mapping[str, Any] | None,
                     items: Sequence[Any], *, limit: int = MAX_ERRORS) -> CheckResult | None:
    """Check a document's items against their record schema, if they have one: a roster whose
    ``meta.category`` is one of :data:`CATEGORIES`; the manifest items that declare a
    ``kind``. Other submissions (a roster of another category, generic items) are not checked
    here and are accepted as before (``None``)."""
    if doc_type == "roster":
        category = meta.get("category") if isinstance(meta, Mapping) else None
        if category not in CATEGORIES:
            return None
        return check_records(roster_schema(str(category)), items, limit=limit)
    if doc_type == "manifest":
        if not any(_has_kind(item) for item in items):
            return None
        return check_records(record_schema(MANIFEST_ITEM), items, limit=limit, select=_has_kind)
    return None


def validate_submission(doc_type: str, meta: Mapping[str, Any] | None,
                        items: Sequence[Any]) -> None:
    """Raise :class:`InputError` naming ``items[i].field`` of the first problem (and saying how
    many other items have one), if any."""
    result = check_submission(doc_type, meta, items, limit=1)
    if result is None or result.ok:
        return
    first = result.errors[0]
    field = f"items[{first.index}]" + (f".{first.field}" if first.field else "")
    others = len(result.bad) - 1
    more = f" ({others} other item(s) have problems too)" if others else ""
    raise InputError(first.message + more, field=field, code="invalid_record")


__all__ = ["CATEGORIES", "DNA_ADVICE", "DNA_FIELD_NAME", "MANIFEST_ITEM", "MANIFEST_KINDS",
           "MAX_ERRORS", "CheckResult", "FieldInfo", "RecordError", "RecordSchema", "check_records",
           "check_submission", "looks_like_str_profile", "record_schema", "roster_schema",
           "validate_submission"]
