"""The one canonical encoding of Bridge: a strict subset of MessagePack.

Rules (schemas/PROTOCOL.md §2 states them for implementers):

1. Types: nil, bool, int (-2**63 .. 2**64-1), str (UTF-8), bin, array, map. No float, no ext,
   no timestamp: a float has several encodings and rounding, which signed data cannot afford.
2. Every int, str, bin, array and map uses the shortest MessagePack form for its value or length
   (what msgpack-python emits with ``use_bin_type=True``).
3. Map keys are str, unique, and sorted by their UTF-8 bytes (byte-wise, shorter first on a tie).
4. Bytes are bin, never str; text is str, never bin.

Decoding is strict: the input must be exactly one value, within ``Limits``, and re-encoding the
decoded value must give back the same bytes; otherwise ``DecodeError``. Signatures elsewhere are
always checked over the bytes received, never over a re-encoding; the re-encoding here only proves
that a value has exactly one byte form, so that its hash is its identity.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from bridge.errors import DecodeError

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Hard bounds applied while decoding untrusted bytes."""

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 16
    max_items: int = 1_000_000  # elements in any one array or map
    max_str: int = 1024 * 1024
    max_bin: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_items", "max_str", "max_bin"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


DEFAULT_LIMITS = Limits()
# Small structures (headers, identity statements, receipts' fixed parts).
SMALL_LIMITS = Limits(max_bytes=64 * 1024, max_items=4096, max_str=16 * 1024, max_bin=16 * 1024)


_PASS_THROUGH = frozenset({str, bytes, bool, int, type(None)})
_STR_ONLY = frozenset({str})
# key tuple as found -> (keys sorted, a C-level getter of the values in that order)
_KEY_PLANS: dict[tuple[Any, ...], tuple[tuple[str, ...], Callable[[Any], Any]]] = {}
_KEY_PLANS_MAX = 4096


def _values_in_order(order: tuple[str, ...], value: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(value[k] for k in order)


def _key_plan(keys: tuple[Any, ...]) -> tuple[tuple[str, ...], Callable[[Any], Any]]:
    plan = _KEY_PLANS.get(keys)
    if plan is None:
        # set(map(type, ...)) runs in C: the common flat record costs no Python loop.
        if not set(map(type, keys)) <= _STR_ONLY:
            raise DecodeError("map keys must be str", reason="map_key")
        order = tuple(sorted(keys))
        getter: Callable[[Any], Any]
        if len(order) > 1:
            getter = operator.itemgetter(*order)
        else:  # itemgetter of one key returns the value itself, not a 1-tuple
            getter = functools.partial(_values_in_order, order)
        plan = (order, getter)
        if len(_KEY_PLANS) < _KEY_PLANS_MAX:
            # Records of one list share their keys in the same order: sort each key set
            # once (bounded, so hostile variety cannot grow it without end).
            _KEY_PLANS[keys] = plan
    return plan


def _canonical(value: Any, depth: int) -> Any:
    """Return ``value`` with maps re-ordered by key; reject what the rules forbid.

    Sorting str keys by code point is the same as sorting their UTF-8 bytes (UTF-8 preserves
    code point order), so plain ``sorted`` gives rule 3. Integer range is enforced by the packer.
    """
    kind = type(value)
    if kind in _PASS_THROUGH:
        return value
    if depth > 64:
        raise DecodeError("value nested too deeply to encode", reason="too_deep")
    if kind is dict:
        order, getter = _key_plan(tuple(value))
        values = getter(value)
        if set(map(type, values)) <= _PASS_THROUGH:
            return dict(zip(order, values, strict=True))
        return dict(zip(order, [v if type(v) in _PASS_THROUGH else _canonical(v, depth + 1)
                                for v in values], strict=True))
    if kind is list or kind is tuple:
        if set(map(type, value)) <= _PASS_THROUGH:
            return value if kind is list else list(value)
        return [_canonical(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return _canonical(dict(value), depth)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise DecodeError(f"type {type(value).__name__} has no canonical encoding", reason="type")


def encode(value: Any) -> bytes:
    """Encode ``value`` canonically. Raises ``DecodeError`` for values the rules forbid."""
    try:
        return msgpack.packb(_canonical(value, 0), use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DecodeError(f"cannot encode: {exc}", reason="type") from exc


def canonical(value: Any) -> Any:
    """``value`` made canonical (maps sorted), ready for ``pack_canonical``."""
    return _canonical(value, 0)


def pack_canonical(value: Any) -> bytes:
    """Pack a value that is already canonical (from ``canonical``, or a map literal written
    with its keys in sorted order whose values are canonical). A hot-path helper: callers
    that are not sure must use ``encode``."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DecodeError(f"cannot encode: {exc}", reason="type") from exc


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"ext type {code} is not allowed", reason="ext")


def _check_canonical_shape(value: Any, limit: int) -> None:
    """Depth, floats, and map key type and order, in one iterative walk (hostile nesting
    cannot exhaust the stack). Work per container is mostly C (set/map/sorted), which keeps
    decoding 100,000 small entries cheap. Shortest forms and unique keys are then checked by
    re-packing the decoded value in its decoded order and comparing bytes.

    Scalars are never pushed (nil included), so the depth limit counts containers only.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            keys = list(item)
            if not set(map(type, keys)) <= _STR_ONLY:
                raise DecodeError("map keys must be str", reason="map_key")
            if keys != sorted(keys):
                raise DecodeError("map keys are not in canonical order", reason="not_canonical")
            values: Any = item.values()
        elif kind is list:
            values = item
        elif kind is float:
            raise DecodeError("floats are not allowed", reason="float")
        else:
            continue
        if depth > limit:
            raise DecodeError(f"nesting deeper than {limit}", reason="too_deep")
        types = set(map(type, values))
        if types <= _PASS_THROUGH:
            continue
        if float in types:
            raise DecodeError("floats are not allowed", reason="float")
        stack.extend((v, depth + 1) for v in values if type(v) is dict or type(v) is list)


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode exactly one canonical value from ``data`` within ``limits``."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes", reason="type")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {limits.max_bytes}",
                          reason="too_large")
    if not data:
        raise DecodeError("empty input", reason="truncated")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            ext_hook=_no_ext,
            max_str_len=limits.max_str,
            max_bin_len=limits.max_bin,
            max_array_len=limits.max_items,
            max_map_len=limits.max_items,
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the value", reason="trailing") from exc
    except (msgpack.OutOfData, EOFError) as exc:
        raise DecodeError("input ends before the value does", reason="truncated") from exc
    except msgpack.StackError as exc:
        raise DecodeError("nesting too deep", reason="too_deep") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError("str is not valid UTF-8", reason="utf8") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # msgpack reports these as ValueError; give each rule its own stable reason code.
        text = str(exc)
        if "incomplete input" in text:
            raise DecodeError("input ends before the value does", reason="truncated") from exc
        if "max_ext_len" in text:  # max_ext_len=0 refuses every ext (and timestamp) type
            raise DecodeError("ext types are not allowed", reason="ext") from exc
        if "exceeds max_" in text:
            raise DecodeError(f"over a decoding limit: {exc}", reason="too_large") from exc
        if "not allowed for map key" in text:
            raise DecodeError("map keys must be str", reason="map_key") from exc
        raise DecodeError(f"not valid MessagePack: {exc}", reason="malformed") from exc
    _check_canonical_shape(value, limits.max_depth)
    try:
        again = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DecodeError(f"not canonical: {exc}", reason="not_canonical") from exc
    if again != data:
        raise DecodeError("not the canonical encoding of its value", reason="not_canonical")
    return value
