"""Free-form data as JSON can hold it (I-JSON, RFC 7493): a header's ``meta`` and an entry's
``data`` are maps of JSON data in msgpack, and the local API shows them as JSON.

Pure: values in, a place and a reason out.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.core import times


def _is_json_data(value: object) -> bool:
    """The fast test behind ``json_data_problem``: no paths built. False also for data of
    other container types (a Mapping that is no dict): the slow walk then decides."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str or t is bool or v is None:
            continue
        if t is int and isinstance(v, int):
            if not -times.MAX_JSON_INT <= v <= times.MAX_JSON_INT:
                return False
        elif t is dict and isinstance(v, dict):
            stack.extend(v.values())
        elif t is list and isinstance(v, list):
            stack.extend(v)
        else:
            return False
    return True


def json_data_problem(value: object, path: str) -> tuple[str, str] | None:
    """Where ``value`` holds something the local API cannot show as JSON, and why; or None.

    Free-form data (a header's ``meta``, an entry's ``data``) is JSON data in msgpack: maps,
    arrays, text, booleans, nil and integers within ±(2**53 − 1) (I-JSON, RFC 7493 §2.2). A bin
    or an integer beyond that decodes here but would fail (or silently change) in every JSON
    reader. Iterative: the depth is bounded by the decoder, not by Python's stack."""
    if _is_json_data(value):
        return None
    stack: list[tuple[str, object]] = [(path, value)]  # the slow walk, to name the place
    while stack:
        where, v = stack.pop()
        if isinstance(v, Mapping):
            stack.extend((f"{where}.{k}", inner) for k, inner in v.items())
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{where}[{n}]", inner) for n, inner in enumerate(v))
        elif times.is_int(v):
            if times.check_int(v, minimum=-times.MAX_JSON_INT, maximum=times.MAX_JSON_INT):
                return where, (f"an integer in free-form data lies within ±{times.MAX_JSON_INT}"
                               " (write larger numbers as text)")
        elif isinstance(v, float):
            return where, "numbers with a fraction must be written as text"
        elif not (v is None or isinstance(v, (str, bool))):
            return where, (f"free-form data holds only maps, arrays, text, numbers, booleans "
                           f"and null, not {type(v).__name__}")
    return None


__all__ = ["json_data_problem"]
