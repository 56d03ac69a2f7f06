"""JSON files: a submission (``{"meta": {...}, "items": [...]}`` or a list of items) and any
JSON value an import reads, within the JSON limits, checked before ``json.loads`` builds it."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from bridge.core.errors import InputError
from bridge.core.printable import QUOTED_CHARS, printable, quoted
from bridge.records.categories import check_submission
from bridge.records.importers.formats import Submission
from bridge.records.importers.limits import LIMITS, ImportLimitError, ImportLimits
from bridge.records.importers.problems import MAX_LISTED, ImportErrors, RowError
from bridge.records.record_schemas import CATEGORIES, MANIFEST_ITEM, roster_schema


def _read_json_text(path: str, name: str, limits: ImportLimits) -> str:
    """At most ``max_json_bytes`` of the file (or standard input), as UTF-8 text: the limit is
    checked before the text is held, never after."""
    cap = limits.max_json_bytes
    try:
        if path == "-":
            data = sys.stdin.buffer.read(cap + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(cap + 1)
        if len(data) > cap:
            raise ImportLimitError(name, "more bytes than the limit", limit="max_json_bytes",
                                   value=cap)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {name}: {exc}") from exc


# A JSON string (RFC 8259 §7), escapes included: what lies between is structure.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SAME_BRACKETS = str.maketrans("{}", "[]")


def _check_json_shape(text: str, name: str, limits: ImportLimits) -> None:
    """Count arrays and objects and measure their nesting before json.loads builds any: a
    64 MB file of ``[]`` would otherwise become a million Python lists a megabyte. Scans
    run at C speed (regular expressions and str methods), a pass per level of nesting."""
    structure = _JSON_STRING.sub("", text)
    containers = structure.count("[") + structure.count("{")
    if containers > limits.max_json_containers:
        raise ImportLimitError(name, f"{containers:,} arrays and objects",
                               limit="max_json_containers", value=limits.max_json_containers)
    # Innermost pairs are removed one level a pass; what is left after max_json_depth
    # passes is nested deeper (or does not pair up, which json.loads then reports).
    brackets = _NOT_BRACKET.sub("", structure).translate(_SAME_BRACKETS)
    for _ in range(limits.max_json_depth):
        inner = brackets.replace("[]", "")
        if inner == brackets:
            return
        brackets = inner
    if brackets:
        raise ImportLimitError(name, "arrays and objects nested deeper than the limit",
                               limit="max_json_depth", value=limits.max_json_depth)


def load_json_value(path: str, *, limits: ImportLimits = LIMITS) -> Any:
    """The JSON value of a file ("-" is stdin) within the JSON limits: every JSON file an
    import reads (a submission, ``send --meta``) comes through here."""
    name = "standard input" if path == "-" else path
    text = _read_json_text(path, name, limits)
    _check_json_shape(text, name, limits)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno}") from exc
    except RecursionError as exc:
        raise InputError(f"{name} is nested too deeply") from exc
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise InputError(f"{name} is not valid JSON: {exc}") from exc


def load_json_submission(path: str, *, limits: ImportLimits = LIMITS
                         ) -> tuple[list[Any], dict[str, Any] | None]:
    """Read ``{"meta": {...}, "items": [...]}`` or a bare list of items ("-" is stdin)."""
    name = "standard input" if path == "-" else path
    value = load_json_value(path, limits=limits)
    if isinstance(value, list):
        return value, None
    if not isinstance(value, dict):
        raise InputError(f"{name} must hold a list of items or an object "
                         '{"meta": {...}, "items": [...]}')
    extra = sorted(set(value) - {"meta", "items"})
    if extra:
        raise InputError(f"{name}: unexpected top-level key(s) "
                         f"{', '.join(map(quoted, extra[:8]))} (only "
                         '"meta" and "items"; give the type, --to and --id on the command line)',
                         field=printable(extra[0])[:QUOTED_CHARS])
    items = value.get("items")
    if not isinstance(items, list):
        raise InputError(f"{name}: \"items\" must be a list", field="items")
    meta = value.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise InputError(f"{name}: \"meta\" must be an object", field="meta")
    return items, meta


def json_submission(path: str, doc_type: str, category: str | None,
                    limits: ImportLimits) -> Submission:
    name = "standard input" if path == "-" else path
    items, meta = load_json_submission(path, limits=limits)
    if doc_type == "roster":
        declared = meta.get("category") if meta else None
        if category is not None and declared is not None and declared != category:
            # The file's word is quoted only if it is a category (never a shifted cell).
            shown = repr(declared) if declared in CATEGORIES else "another category"
            raise InputError(f"{name}: meta.category is {shown}, but --category says "
                             f"{quoted(category)}", field="meta.category")
        category = category or (declared if declared in CATEGORIES else None)
        if category is not None:
            roster_schema(category)  # an unknown --category is refused here, by name
            meta = {**(meta or {}), "category": category}
            for item in items:
                # Each record carries its category (DESIGN §6); the file may leave it to meta.
                if isinstance(item, dict) and "category" not in item:
                    item["category"] = category
    result = check_submission(doc_type, meta, items, limit=MAX_LISTED)
    if result is None:
        return Submission(items=items, meta=meta, format="json", schema=None)
    if not result.ok:
        errors = []
        for e in result.errors:
            message = e.message
            if e.code == "duplicate_id" and e.first is not None:
                message += f" (first at items[{e.first}])"
            errors.append(RowError(index=e.index, field=e.field or None, message=message))
        raise ImportErrors(name, errors, bad_rows=len(result.bad))
    schema = f"roster-{category}" if doc_type == "roster" else MANIFEST_ITEM
    return Submission(items=items, meta=meta, format="json", schema=schema)


__all__ = ["json_submission", "load_json_submission", "load_json_value"]
