"""The strict JSON of identity and key files (PROTOCOL.md §4.3, §4.4): one spelling of each.

json.loads alone takes a byte-order mark, UTF-16 and UTF-32 from bytes and keeps the last of a
repeated key; JSON true and 1.0 are ``== 1`` in Python; base64 has more than one spelling of the
same bytes. Each would let a file that no Bridge wrote be accepted, or be read differently by
another reader. Bytes in, values out: reading the file is the home's business.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from bridge.core.printable import quoted

# Identity and key files (PROTOCOL §4.3, §4.4): a few hundred bytes, so a bound far above.
MAX_KEY_FILE_BYTES = 64 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:  # json.loads keeps the last: a reader might see the first
            raise ValueError(f"the key {quoted(key)} is given twice")
        obj[key] = value
    return obj


def key_file_json(text: str | bytes) -> dict[str, Any]:
    """The strict JSON of an identity or key file (PROTOCOL §4.3): UTF-8 without a byte-order
    mark, at most MAX_KEY_FILE_BYTES, an object with no key given twice. ValueError says why.
    (json.loads alone would take a BOM, UTF-16 or UTF-32 from bytes, and a repeated key.)"""
    if isinstance(text, bytes):
        if text.startswith(_UTF8_BOM):
            raise ValueError("it begins with a byte-order mark")
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    elif text.startswith("\ufeff"):
        raise ValueError("it begins with a byte-order mark")
    if len(text) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"larger than {MAX_KEY_FILE_BYTES} bytes")
    data = json.loads(text, object_pairs_hook=_unique_keys)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def is_version(value: Any, version: int) -> bool:
    # JSON true and 1.0 are == 1 in Python; only the integer is the version (PROTOCOL §2.1).
    return type(value) is int and value == version


def strict_b64(value: Any) -> bytes:
    """RFC 4648 §4 base64 with padding, in its one canonical spelling."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    raw = base64.b64decode(value, validate=True)
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("not canonical base64")
    return raw


__all__ = ["MAX_KEY_FILE_BYTES", "is_version", "key_file_json", "strict_b64"]
