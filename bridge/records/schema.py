"""JSON Schema validation of locally supplied JSON, with errors that name the JSON path.

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
    raise InputError(err.message, field=json_path(path))
