"""Record schemas: the four roster categories and manifest items, as their JSON Schemas
(2020-12, package data in ``schemas/``) describe them, and what an importer and a message need
to know of each field (its kind, whether it is a date, sensitive, required; its hint).

Each record kind has a schema: ``roster-pow``, ``roster-civilian_detainee``,
``roster-child_tracing``, ``roster-remains`` and ``manifest-item`` (DESIGN §6). Sensitive fields
carry ``"x-sensitive": true`` and are listed in the schema's top-level ``"x-sensitive-fields"``;
``"x-hint"`` says in words what a value must look like, for messages.

Pure: no I/O beyond reading the schema files once.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from bridge.core.errors import InputError
from bridge.records.schema import SCHEMA_DIR

CATEGORIES = ("pow", "civilian_detainee", "child_tracing", "remains")
MANIFEST_ITEM = "manifest-item"
MANIFEST_KINDS = ("person", "remains_package", "effects_packet", "document")


@dataclass(frozen=True, kw_only=True)
class FieldInfo:
    """What an importer and a message need to know of one field (``a`` or ``a.b``)."""

    path: str
    kind: str  # string | integer | boolean | list | object | any
    item_kind: str | None = None  # for lists: the kind of each entry
    date: bool = False
    sensitive: bool = False
    required: bool = False
    hint: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RecordSchema:
    name: str
    category: str | None  # roster schemas only
    schema: Mapping[str, Any]
    fields: Mapping[str, FieldInfo]  # top-level and nested (``identification.status``)
    required: tuple[str, ...]
    alternatives: tuple[str, ...]  # anyOf of single "required": at least one of these
    open: bool  # further (unlisted) fields are allowed
    sensitive: frozenset[str]
    validator: Any

    @property
    def free_nested(self) -> tuple[str, ...]:
        """Top-level lists and objects that may hold free text (not lists of fixed words)."""
        return tuple(f.path for f in self.fields.values() if "." not in f.path
                     and (f.kind == "object" or (f.kind == "list" and not f.options)))

    @property
    def date_fields(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields.values() if f.date and "." not in f.path)

    def field(self, path: str) -> FieldInfo | None:
        """The field a path inside a record is about (list positions dropped)."""
        return self.fields.get(re.sub(r"\[\d+\]", "", path))


def _resolve(prop: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a property with the ``$defs`` entry it refers to (the property's keys win)."""
    out: dict[str, Any] = {}
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out.update(_resolve(defs[ref.removeprefix("#/$defs/")], defs))
        out["x-def"] = ref.removeprefix("#/$defs/")
    out.update({k: v for k, v in prop.items() if k != "$ref"})
    return out


def _kind(spec: Mapping[str, Any]) -> str:
    t = spec.get("type")
    if isinstance(t, str):
        return {"array": "list", "string": "string", "integer": "integer",
                "boolean": "boolean", "object": "object"}.get(t, "any")
    if "enum" in spec or "const" in spec:
        return "string"
    return "any"


def _fields(props: Mapping[str, Any], required: Sequence[str], defs: Mapping[str, Any],
            prefix: str = "") -> Iterator[FieldInfo]:
    for name, raw in props.items():
        spec = _resolve(raw, defs)
        path = prefix + name
        item_kind = None
        options: tuple[str, ...] = tuple(spec.get("enum", ()))
        if _kind(spec) == "list":
            items = _resolve(spec.get("items", {}), defs)
            item_kind = _kind(items)
            options = tuple(items.get("enum", ()))
        yield FieldInfo(path=path, kind=_kind(spec), item_kind=item_kind,
                        date=spec.get("x-def") == "date", sensitive=bool(spec.get("x-sensitive")),
                        required=name in required, hint=spec.get("x-hint"), options=options)
        if _kind(spec) == "object" and "properties" in spec:
            yield from _fields(spec["properties"], spec.get("required", ()), defs, path + ".")


@functools.cache
def record_schema(name: str) -> RecordSchema:
    """``roster-pow`` … ``roster-remains`` or ``manifest-item``, loaded once."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    defs = schema.get("$defs", {})
    fields = {f.path: f for f in _fields(schema["properties"], schema["required"], defs)}
    alternatives = tuple(alt["required"][0] for alt in schema.get("anyOf", ())
                         if list(alt) == ["required"] and len(alt["required"]) == 1)
    return RecordSchema(
        name=name, category=schema.get("x-category"), schema=schema, fields=fields,
        required=tuple(schema["required"]), alternatives=alternatives,
        open=schema.get("additionalProperties", True) is not False,
        sensitive=frozenset(schema.get("x-sensitive-fields", ())),
        validator=jsonschema_rs.validator_for(schema))


def roster_schema(category: str) -> RecordSchema:
    if category not in CATEGORIES:
        raise InputError(f"unknown category; one of: {', '.join(CATEGORIES)}",
                         field="category", code="unknown_category")
    return record_schema(f"roster-{category}")


@functools.cache
def _list_check(name: str) -> tuple[Any, Any | None]:
    """(the record schema applied to every element of a list, the validator of one field name
    against its ``propertyNames``); ``propertyNames`` is then left out of the first.

    A name check is the same whatever the record it is in, and two regular expressions a field
    a record cost two thirds of the list check: asked once for each name in a list instead.
    A schema whose ``propertyNames`` refers elsewhere (``$ref``) is kept whole (None)."""
    schema = record_schema(name).schema
    names = schema.get("propertyNames")
    if names is None or "$ref" in json.dumps(names):
        return _array_of(schema), None
    rest = {k: v for k, v in schema.items() if k != "propertyNames"}
    return _array_of(rest), jsonschema_rs.validator_for(names)


def _array_of(schema: Mapping[str, Any]) -> Any:
    return jsonschema_rs.validator_for({"type": "array", "items": schema})


def records_valid(name: str, records: Sequence[dict[str, Any]]) -> bool:
    """Does every record pass the schema ``name``? One call for a whole document, for its
    verdict only (what is wrong is said by ``RecordSchema.validator``): ``propertyNames``
    holds for every record when it holds for each name any of them has (JSON Schema 2020-12
    §10.3.2.4 applies it to every name alone), so each name is checked once."""
    each, names = _list_check(name)
    if not each.is_valid(records):
        return False
    return names is None or all(names.is_valid(n) for n in set().union(*records))


def field_path(parts: Sequence[str | int]) -> str:
    """``["identification", "method", 1]`` -> ``identification.method[1]``: a path inside a
    record, as messages name it."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def join_field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


__all__ = ["CATEGORIES", "MANIFEST_ITEM", "MANIFEST_KINDS", "FieldInfo", "RecordSchema",
           "field_path", "join_field", "record_schema", "records_valid", "roster_schema"]
