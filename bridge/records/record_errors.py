"""Problems of records: one problem of one record, every problem of a list of them, and a JSON
Schema error in words a person filling in a spreadsheet can act on.

Messages quote a bad value only when asked to (and never a sensitive field's): messages end up
on screens and in logs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from bridge.core.printable import QUOTED_CHARS, said
from bridge.records.dna import DNA_ADVICE, DNA_FIELD_NAME
from bridge.records.record_schemas import (
    CATEGORIES,
    MANIFEST_KINDS,
    RecordSchema,
    field_path,
    join_field,
)
from bridge.records.schema import TYPE_WORDS, describe


@dataclass(frozen=True, kw_only=True)
class RecordError:
    """One problem of one record. ``field`` is a path inside the record (``surname``,
    ``identification.method[1]``); empty when it is about the record as a whole."""

    index: int
    field: str
    message: str
    code: str  # missing | unknown_field | bad_value | bad_date | raw_dna | withheld_present
    #            | duplicate_id | not_a_record
    first: int | None = None  # duplicate_id: the index where the id first appeared


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    errors: tuple[RecordError, ...]  # in record order; at most the limit asked for
    bad: frozenset[int]  # indices of every record with at least one problem

    @property
    def ok(self) -> bool:
        return not self.bad


def _suggest(name: str, schema: RecordSchema) -> str:
    close = difflib.get_close_matches(name.lower(), list(schema.fields), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


_K = jsonschema_rs.ValidationErrorKind
# Bounds a value passed, in words: the kinds of error, and the message given the error's kind
# (never the value: it may be a person's name or date of birth).
_BOUND_WORDS: tuple[tuple[tuple[type, ...], Callable[[Any], str]], ...] = (
    ((_K.Minimum, _K.ExclusiveMinimum), lambda kind: f"must be at least {kind.limit}"),
    ((_K.Maximum, _K.ExclusiveMaximum), lambda kind: f"must be at most {kind.limit}"),
    ((_K.MinLength,), lambda kind: "must not be empty"),
    ((_K.MaxLength,), lambda kind: f"is longer than {kind.limit} characters"),
    ((_K.MinItems,), lambda kind: f"must list at least {kind.limit} value(s)"),
    ((_K.MaxItems,), lambda kind: f"lists more than {kind.limit} values"),
    ((_K.UniqueItems,), lambda kind: "lists the same value twice"),
    ((_K.MaxProperties,), lambda kind: f"has more than {kind.limit} fields"),
)


def translate(schema: RecordSchema, index: int, err: Any, record: Mapping[str, Any]
              ) -> list[RecordError]:
    """A jsonschema_rs error, in words a person filling in a spreadsheet can act on."""
    at = list(err.instance_path)
    field = field_path(at)
    about_names = _name_errors(schema, index, err.kind, field, at)
    if about_names is not None:
        return about_names
    message = _value_message(schema, err, field, record)
    return [RecordError(index=index, field=field, message=message, code="bad_value")]


def _name_errors(schema: RecordSchema, index: int, kind: Any, field: str,
                 at: Sequence[str | int]) -> list[RecordError] | None:
    """Errors about which fields a record has (missing, unknown, a bad name), each naming the
    field itself rather than the object that holds it; None for an error about a value."""

    def one(message: str, code: str, where: str) -> list[RecordError]:
        return [RecordError(index=index, field=where, message=message, code=code)]

    if isinstance(kind, _K.Required):
        return one("required field is missing", "missing", join_field(field, str(kind.property)))
    if isinstance(kind, _K.AnyOf) and not at and schema.alternatives:
        names = schema.alternatives
        return one(f"give at least one of {' or '.join(names)}", "missing", names[0])
    # A name the record chose is named (a key is no person's data), escaped and bounded.
    if isinstance(kind, _K.AdditionalProperties):
        return [RecordError(index=index, field=join_field(field, said(name, QUOTED_CHARS)),
                            code="unknown_field",
                            message=f"unknown field{_suggest(str(name), schema)}")
                for name in kind.unexpected]
    if isinstance(kind, _K.PropertyNames):
        inner = kind.error
        name = str(inner.instance)
        if isinstance(inner.kind, _K.Not) or DNA_FIELD_NAME.search(name.lower()):
            return one(DNA_ADVICE, "raw_dna", join_field(field, said(name, QUOTED_CHARS)))
        return one("field names are lower-case letters, digits and _ (at most 64)"
                   + _suggest(name, schema), "unknown_field",
                   join_field(field, said(name, QUOTED_CHARS)))
    return None


def _value_message(schema: RecordSchema, err: Any, field: str, record: Mapping[str, Any]
                   ) -> str:
    """What is wrong with a value: its type, its words, its form or its bounds."""
    kind = err.kind
    info = schema.field(field)
    value = err.instance
    if isinstance(kind, _K.Type):
        wanted = " or ".join(TYPE_WORDS.get(str(t), str(t)) for t in kind.types)
        return f"must be {wanted}"
    if field == "category" and isinstance(kind, (_K.Constant, _K.Enum)):
        return _category_message(schema, kind, value, record.get("kind"))
    if isinstance(kind, _K.Constant):
        return f"must be {kind.expected_value!r} here"
    if isinstance(kind, _K.Enum) and re.fullmatch(r"withheld\[\d+\]", field):
        if value in schema.required:
            return f"{value} is required, so it cannot be withheld"
        # Not quoted: a withheld entry that names no field may be anything (a shifted cell).
        return (f"only optional fields of a {schema.category} record can be withheld; "
                f"one of: {', '.join(str(o) for o in kind.options)}")
    if isinstance(kind, _K.Enum):
        return f"must be one of: {', '.join(str(o) for o in kind.options)}"
    if isinstance(kind, _K.Pattern):
        hint = info.hint if info is not None and info.hint else "a value of the expected form"
        return f"must be {hint}"
    for kinds, words in _BOUND_WORDS:
        if isinstance(kind, kinds):
            return words(kind)
    return describe(kind)


def _category_message(schema: RecordSchema, kind: Any, value: object, item_kind: object
                      ) -> str:
    allowed = [str(o) for o in ([kind.expected_value]
               if isinstance(kind, _K.Constant) else kind.options)]
    if value not in CATEGORIES:
        return ("unknown category; " + (f"this roster's category is {schema.category}"
                if schema.category else f"one of: {', '.join(CATEGORIES)}"))
    if schema.category:
        return (f"a {schema.category} roster holds only {schema.category} records, not {value}: "
                f"send those in a {value} roster of their own")
    return (f"a {item_kind} is not of category {value}; one of: {', '.join(allowed)}"
            if item_kind in MANIFEST_KINDS else f"must be one of: {', '.join(allowed)}")


__all__ = ["CheckResult", "RecordError", "translate"]
