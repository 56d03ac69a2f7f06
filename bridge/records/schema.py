"""JSON Schema validation of locally supplied JSON, with errors that name the JSON path and the
rule broken, never the value.

The schemas are package data in ``bridge/records/schemas/`` (so an installed wheel has them); they
are part of the published format that ``schemas/PROTOCOL.md`` describes.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema_rs

from bridge.core.errors import InputError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def json_path(parts: list[str | int]) -> str:
    """``["items", 3, "id"]`` -> ``items[3].id``; the root is ``$``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


@functools.cache
def _validator(name: str) -> Any:
    path = SCHEMA_DIR / f"{name}.schema.json"
    return jsonschema_rs.validator_for(json.loads(path.read_text(encoding="utf-8")))


def validate(name: str, instance: Any) -> None:
    """Raise ``InputError`` naming the JSON path of the first problem, if any."""
    validator = _validator(name)
    if validator.is_valid(instance):
        return
    errors = sorted(validator.iter_errors(instance), key=lambda e: len(list(e.instance_path)))
    # The deepest error in the shallowest failing branch names the field best; take the first.
    err = errors[0]
    for candidate in errors:
        if list(candidate.instance_path)[: len(list(err.instance_path))] == list(
            err.instance_path
        ):
            err = candidate
    path: list[str | int] = list(err.instance_path)
    # A missing or an unexpected property is reported on the object that holds it; name the
    # property itself, so that the caller learns which field to add or remove.
    kind = err.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        path.append(str(kind.property))
    elif isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) \
            and kind.unexpected:
        path.append(str(kind.unexpected[0]))
    raise InputError(describe(err.kind), field=json_path(path))


_K = jsonschema_rs.ValidationErrorKind
TYPE_WORDS = {"integer": "a whole number", "string": "text", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "empty", "number": "a number"}
# What a failing keyword says, in words built from the keyword and the schema alone: never from
# jsonschema's own message, which quotes the value (a name, a date of birth, a service number),
# and error messages are logged and shown in terminals. A key is not personal data; a value is.
_WORDS: tuple[tuple[type, Any], ...] = (
    (_K.Required, lambda k: "required field is missing"),
    (_K.AdditionalProperties, lambda k: "unknown field"),
    (_K.UnevaluatedProperties, lambda k: "unknown field"),
    (_K.Type, lambda k: "must be " + " or ".join(TYPE_WORDS.get(str(t), str(t))
                                                 for t in k.types)),
    (_K.MaxLength, lambda k: f"is longer than {k.limit} characters"),
    (_K.MinLength, lambda k: f"is shorter than {k.limit} character(s)"),
    (_K.Pattern, lambda k: "does not match the pattern for this field"),
    (_K.Format, lambda k: f"is not a valid {k.format}"),
    (_K.Enum, lambda k: "is not one of the allowed values"),
    (_K.Constant, lambda k: "is not the value required here"),
    (_K.Minimum, lambda k: f"must be at least {k.limit}"),
    (_K.ExclusiveMinimum, lambda k: f"must be more than {k.limit}"),
    (_K.Maximum, lambda k: f"must be at most {k.limit}"),
    (_K.ExclusiveMaximum, lambda k: f"must be less than {k.limit}"),
    (_K.MinItems, lambda k: f"must list at least {k.limit} value(s)"),
    (_K.MaxItems, lambda k: f"lists more than {k.limit} values"),
    (_K.UniqueItems, lambda k: "lists the same value twice"),
    (_K.MinProperties, lambda k: f"has fewer than {k.limit} fields"),
    (_K.MaxProperties, lambda k: f"has more than {k.limit} fields"),
)


def describe(kind: Any) -> str:
    """What is wrong, from a jsonschema_rs error's kind: the keyword and its bound, never the
    value (see ``_WORDS``)."""
    for cls, words in _WORDS:
        if isinstance(kind, cls):
            return str(words(kind))
    return f"does not satisfy the schema's {kind.name} rule"
