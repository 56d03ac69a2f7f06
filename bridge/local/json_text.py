"""JSON text as the local API reads it: RFC 8259 strictly (UTF-8, no NaN, no duplicate names),
nested no deeper than the handlers can walk, and no string that is not text. One rule for a
JSON body and for each line of a streamed document (``bridge.local.stream``)."""

from __future__ import annotations

import json
from typing import Any

from bridge.core.errors import InputError

# Deepest JSON body accepted: a document's item data is at most 16 deep (PROTOCOL.md §2.4,
# SMALL), under the body, its items and the item.
MAX_JSON_DEPTH = 32


def parse_json(raw: bytes | bytearray, *, field: str) -> Any:
    """A JSON text as the local API reads every one; ``InputError`` naming ``field``."""
    try:
        # RFC 8259 §8.1: UTF-8 (a byte-order mark is refused with it, as \ufeff is no JSON);
        # NaN and Infinity are no JSON numbers; duplicate names would let two readers of one
        # body see different values. RecursionError: nesting past the parser's own limit.
        value = _DECODER.decode(raw.decode("utf-8"))
    except RecursionError as exc:
        raise InputError(f"not valid JSON: nested deeper than {MAX_JSON_DEPTH}", field=field,
                         code="bad_json") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON: {exc}", field=field, code="bad_json") from exc
    # What _check_json looks for cannot be there when the text has no more brackets than the
    # depth allowed (brackets inside strings only count too many) and no \u escape (a valid
    # UTF-8 text holds no surrogate: only an escape makes one): the walk is then skipped.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH or b"\\u" in raw:
        _check_json(value, field)
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object of ``pairs``; a name twice is a ``ValueError``."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the name {key[:64]!r} appears twice in one object")
            seen.add(key)
    return out


# json.loads with options builds a decoder for every call (a streamed document parses one a
# line); one decoder, which keeps no state between texts, serves every thread.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=unique_names)


def _check_json(value: Any, field: str = "$") -> None:
    """Nesting within ``MAX_JSON_DEPTH`` (what the handlers walk, recursively, must stay far
    from Python's recursion limit) and text that is text: a lone surrogate escape (\ud800)
    parses, but no UTF-8 can hold it, and it would fail deep inside signing (a 500)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, field)
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise InputError(f"not valid JSON here: nested deeper than {MAX_JSON_DEPTH}",
                             field=field, code="bad_json")
        if isinstance(item, dict):
            for key in item:
                _check_text(key, field)
            stack.extend((v, depth + 1) for v in item.values())
        else:
            stack.extend((v, depth + 1) for v in item)


def check_json_value(value: Any, field: str) -> None:
    """``value``, decoded otherwise (a msgpack stream's), held to the same depth and text."""
    _check_json(value, field)


def _check_text(text: str, field: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError("not valid JSON here: a string holds a lone surrogate escape "
                             "(\\ud800 to \\udfff), which is not text", field=field,
                             code="bad_json") from exc


__all__ = ["MAX_JSON_DEPTH", "check_json_value", "parse_json", "unique_names"]
