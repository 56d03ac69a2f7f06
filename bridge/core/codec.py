"""The one canonical encoding of Bridge: a strict subset of MessagePack.

Rules (schemas/PROTOCOL.md §2 states them for implementers):

1. Types: nil, bool, int (-2**63 .. 2**64-1), str (UTF-8), bin, array, map. No float, no ext,
   no timestamp: a float has several encodings and rounding, which signed data cannot afford.
2. Every int, str, bin, array and map uses the shortest MessagePack form for its value or length
   (what msgpack-python emits with ``use_bin_type=True``).
3. Map keys are str, unique, and sorted by their UTF-8 bytes (byte-wise, shorter first on a tie).
4. Bytes are bin, never str; text is str, never bin.

Decoding is strict: the input must be exactly one canonical value, within ``Limits``; otherwise
``DecodeError`` with the reason of the first byte that cannot belong (PROTOCOL.md §2.4). The
work is bounded by the input's size, never by what it declares: nothing is reserved for a
declared length, and the objects built are counted against a budget that grows with the input
(``Limits.max_expansion``), so a body of millions of one-byte values is refused early. Signatures
elsewhere are always checked over the bytes received, never over a re-encoding; canonicality
only proves that a value has exactly one byte form, so that its hash is its identity.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgpack

from bridge.core.errors import DecodeError

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
MAX_DEPTH = 64


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Hard bounds applied while decoding untrusted bytes."""

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 16
    max_items: int = 1_000_000  # elements in any one array or map
    max_str: int = 1024 * 1024
    max_bin: int = 64 * 1024 * 1024
    # Memory for the decoded objects themselves (str and bin contents count only beyond
    # their size in the input, which a str of wide characters exceeds): at most
    # ``max_expansion`` times the input's size plus ``base_budget`` bytes. This is what bounds
    # an input of a million tiny values (empty arrays, small integers, short strings), which
    # no length limit does.
    max_expansion: int = 4
    base_budget: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_depth", "max_items", "max_str", "max_bin",
                     "base_budget"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_expansion < 0:
            raise ValueError("max_expansion must not be negative")
        if self.max_depth > MAX_DEPTH:  # the strict reader recurses once per level
            raise ValueError(f"max_depth must be at most {MAX_DEPTH}")

    def fixed_budget(self, budget: int) -> Limits:
        """These limits with a budget of ``budget`` bytes whatever the input's size: for a
        structure of a fixed shape, whose objects need the same few bytes in any body."""
        return replace(self, max_expansion=0, base_budget=budget)


DEFAULT_LIMITS = Limits()
# Small structures (headers, identity statements, receipts' fixed parts).
SMALL_LIMITS = Limits(max_bytes=64 * 1024, max_items=4096, max_str=16 * 1024, max_bin=16 * 1024)


# msgpack.packb makes a Packer with a 256 KiB buffer for every call. glibc serves a block of
# that size with mmap (always, under the daemon's fixed MALLOC_MMAP_THRESHOLD_), so each small
# encoding paid a map, its page faults and an unmap: ten times the encoding itself. A Packer
# whose first buffer is small (grown as a value needs) costs a heap allocation instead.
_PACK_BUFFER = 4096


def pack_value(value: Any) -> bytes:
    """The MessagePack bytes of ``value``, exactly as ``msgpack.packb(value,
    use_bin_type=True)`` gives them (no canonical check: see ``encode``)."""
    # msgpack-types' stub of Packer lacks buf_size, which both of msgpack's Packers take.
    packer = msgpack.Packer(use_bin_type=True, buf_size=_PACK_BUFFER)  # type: ignore[call-arg]
    return packer.pack(value)


def packer() -> Callable[[Any], bytes]:
    """``pack_value`` for a run of values packed one after another by one caller (one
    thread): one Packer, its buffer reused."""
    return msgpack.Packer(use_bin_type=True, buf_size=_PACK_BUFFER).pack  # type: ignore[call-arg]


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


key_plan = _key_plan  # (keys sorted, a getter of the values in that order) of a key tuple


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
        return pack_value(_canonical(value, 0))
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
        return pack_value(value)
    except (OverflowError, ValueError, TypeError) as exc:
        raise DecodeError(f"cannot encode: {exc}", reason="type") from exc


# ---------------------------------------------------------------- decoding (PROTOCOL.md §2.4)
#
# Two decoders that accept and refuse exactly the same inputs:
#
# - ``_Reader`` reads the bytes once, front to back, and refuses at the first byte that cannot
#   belong to a canonical value within the limits (the reason of that byte: §2.4's order). It
#   never reserves room for what a length only declares (a container may not declare more
#   elements than there are bytes left), and it counts what it builds: the decoded value may
#   take at most ``max_expansion`` times the input's size (plus a small constant), so a body of
#   a million empty arrays, tiny integers or short strings is refused when the count runs out,
#   not after gigabytes.
# - msgpack's C decoder, then a walk and a re-encoding that must give back the input: fast,
#   but it builds the whole value before checking anything. It is used only for inputs too
#   small to exhaust the budget whatever they hold (about 200 KiB with the default limits);
#   when it refuses, ``_Reader`` runs on the same input so that the reason is §2.4's.
# What CPython (64-bit) takes for each decoded object, rounded up (sys.getsizeof): the budget
# counts these, never the sizes that the input declares.
_COST_EMPTY_DICT = 64
_COST_SLOT = 8  # one reference in a list or a dict's value table
_COST_LIST = 56
_COST_DICT = 144  # a small dict; each further key adds _COST_DICT_KEY
_COST_DICT_KEY = 40
_COST_STR = 76
_COST_BIN = 33
_COST_INT = 36
# The most a single input byte can cost (an empty map: 64 bytes and a slot). msgpack's C
# decoder, which cannot count, is used only where the budget cannot run out.
_WORST_PER_BYTE = _COST_EMPTY_DICT + _COST_SLOT


def budget_of(size: int, limits: Limits) -> int:
    """Bytes of decoded objects an input of ``size`` bytes may cost (``Limits``)."""
    return limits.max_expansion * size + limits.base_budget


class _Reader:
    """One strict decoding pass over ``data`` (see the comment above)."""

    __slots__ = ("budget", "data", "end", "limits", "pos")

    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data = data
        self.end = len(data)
        self.pos = 0
        self.limits = limits
        self.budget = budget_of(len(data), limits)

    def fail(self, reason: str, message: str) -> DecodeError:
        return DecodeError(f"{message} (at byte {self.pos})", reason=reason)

    def spend(self, cost: int) -> None:
        self.budget -= cost
        if self.budget < 0:
            raise self.fail("too_large", "the decoded value would need more memory than "
                            f"{budget_of(self.end, self.limits)} bytes (too many small values "
                            "for the input's size)")

    def take(self, n: int) -> int:
        """Start of the next ``n`` bytes, which must all be there."""
        start = self.pos
        if n > self.end - start:
            raise self.fail("truncated", "input ends before the value does")
        self.pos = start + n
        return start

    def uint(self, width: int) -> int:
        start = self.take(width)
        return int.from_bytes(self.data[start:start + width], "big")

    def length(self, width: int, shortest_above: int, limit: int, what: str) -> int:
        """A str/bin/array/map length of ``width`` bytes (0: in the type byte, already read):
        within its limit, then in its shortest form."""
        n = self.uint(width)
        if n > limit:
            raise self.fail("too_large", f"{what} of {n} exceeds the limit of {limit}")
        if n <= shortest_above:
            raise self.fail("not_canonical", f"{what} length {n} not in its shortest form")
        return n

    def value(self, depth: int) -> Any:
        if self.pos >= self.end:
            raise self.fail("truncated", "input ends before the value does")
        b = self.data[self.pos]
        self.pos += 1
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            if b < 0xFB:  # -32 .. -6: CPython shares only -5 .. 256, so each is a new object
                self.spend(_COST_INT)
            return b - 0x100
        if b <= 0x8F:
            return self.map(self.check_len(b & 0x0F, self.limits.max_items, "map"), depth)
        if b <= 0x9F:
            return self.array(self.check_len(b & 0x0F, self.limits.max_items, "array"), depth)
        if b <= 0xBF:
            return self.text(self.check_len(b & 0x1F, self.limits.max_str, "str"))
        return self.tagged(b, depth)

    def check_len(self, n: int, limit: int, what: str) -> int:
        if n > limit:
            raise self.fail("too_large", f"{what} of {n} exceeds the limit of {limit}")
        return n

    def tagged(self, b: int, depth: int) -> Any:
        lim = self.limits
        if b == 0xC0:
            return None
        if b == 0xC2:
            return False
        if b == 0xC3:
            return True
        if b in (0xCA, 0xCB):
            raise self.fail("float", "floats are not allowed")
        if 0xC7 <= b <= 0xC9 or 0xD4 <= b <= 0xD8:
            raise self.fail("ext", "ext types are not allowed")
        if 0xC4 <= b <= 0xC6:
            width = 1 << (b - 0xC4)
            n = self.length(width, (-1, 0xFF, 0xFFFF)[b - 0xC4], lim.max_bin, "bin")
            start = self.take(n)
            if n > 1:  # b"" and one-byte bytes are shared objects
                self.spend(_COST_BIN)
            return self.data[start:start + n]
        if 0xCC <= b <= 0xCF:
            v = self.uint(1 << (b - 0xCC))
            if v < (0x80, 0x100, 0x10000, 0x100000000)[b - 0xCC]:
                raise self.fail("not_canonical", f"integer {v} not in its shortest form")
            self.spend(_COST_INT)
            return v
        if 0xD0 <= b <= 0xD3:
            width = 1 << (b - 0xD0)
            v = self.uint(width)
            v -= (v >> (8 * width - 1)) << (8 * width)  # two's complement
            if v >= (-32, -128, -(2**15), -(2**31))[b - 0xD0]:
                raise self.fail("not_canonical", f"integer {v} not in its shortest form")
            self.spend(_COST_INT)
            return v
        if 0xD9 <= b <= 0xDB:
            width = 1 << (b - 0xD9)
            return self.text(self.length(width, (0x1F, 0xFF, 0xFFFF)[b - 0xD9],
                                         lim.max_str, "str"))
        if b in (0xDC, 0xDD):
            n = self.length(2 if b == 0xDC else 4, 0x0F if b == 0xDC else 0xFFFF,
                            lim.max_items, "array")
            return self.array(n, depth)
        if b in (0xDE, 0xDF):
            n = self.length(2 if b == 0xDE else 4, 0x0F if b == 0xDE else 0xFFFF,
                            lim.max_items, "map")
            return self.map(n, depth)
        raise self.fail("malformed", f"byte {b:#04x} begins no MessagePack value")

    def text(self, n: int) -> str:
        start = self.take(n)
        raw = self.data[start:start + n]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"str is not valid UTF-8 (at byte {start})",
                              reason="utf8") from exc
        if n > 1:
            self.spend(_COST_STR)
            if not text.isascii():
                # CPython stores a str at 1, 2 or 4 bytes per character, the widest one's:
                # one emoji makes a run of ASCII take 4 bytes a letter. Count the excess.
                self.spend(max(0, sys.getsizeof(text) - _COST_STR - n))
        return text

    def container(self, n: int, per_item: int, depth: int, what: str) -> None:
        """Checks at a container's header, before anything is built for it."""
        if depth > self.limits.max_depth:
            raise self.fail("too_deep", f"nesting deeper than {self.limits.max_depth}")
        if n * per_item > self.end - self.pos:
            raise self.fail("truncated", f"{what} of {n} cannot fit in the bytes left")

    def array(self, n: int, depth: int) -> list[Any]:
        self.container(n, 1, depth, "array")
        self.spend(_COST_LIST + _COST_SLOT * n)
        # Made at its size, which ``container`` bounded by the bytes left and the budget has
        # paid for: a list grown by append holds up to an eighth more slots (four for one
        # element), which the budget would not have counted.
        out: list[Any] = [None] * n
        value, data, end = self.value, self.data, self.end
        max_bin = self.limits.max_bin
        # Position and budget kept in locals across a run of inlined elements (written back
        # before anything else reads them): attribute writes per element cost as much as
        # the rest of the element.
        pos, budget = self.pos, self.budget
        for i in range(n):
            # Inline the common element, a bin 8 or 16 (document entries, hashes, proofs):
            # a bulk chunk is a million of them. Anything else goes through ``value``, and so
            # does a bin the budget cannot pay for (``value`` refuses it, naming the same byte).
            b = data[pos] if pos < end else 0
            if (b == 0xC4 or b == 0xC5) and budget >= _COST_BIN:
                start = pos + b - 0xC2  # the type byte and a length of 1 or 2 bytes
                if start <= end:
                    if b == 0xC4:
                        m = data[pos + 1]
                        shortest = True
                    else:
                        m = (data[pos + 1] << 8) | data[pos + 2]
                        shortest = m > 0xFF
                    if shortest and 1 < m <= max_bin and start + m <= end:
                        pos = start + m
                        budget -= _COST_BIN
                        out[i] = data[start:pos]
                        continue
            self.pos, self.budget = pos, budget
            out[i] = value(depth + 1)
            pos, budget = self.pos, self.budget
        self.pos, self.budget = pos, budget
        return out

    def key(self) -> tuple[bytes, str]:
        """A map key: its UTF-8 bytes (what §2.3 sorts by) and its text."""
        if self.pos >= self.end:
            raise self.fail("truncated", "input ends before the value does")
        b = self.data[self.pos]
        if 0xA0 <= b <= 0xBF:
            self.pos += 1
            n = self.check_len(b & 0x1F, self.limits.max_str, "str")
        elif 0xD9 <= b <= 0xDB:
            self.pos += 1
            width = 1 << (b - 0xD9)
            n = self.length(width, (0x1F, 0xFF, 0xFFFF)[b - 0xD9], self.limits.max_str, "str")
        else:
            raise self.fail("map_key", "map keys must be str")
        text = self.text(n)
        return self.data[self.pos - n:self.pos], text

    def map(self, n: int, depth: int) -> dict[str, Any]:
        self.container(n, 2, depth, "map")
        self.spend(_COST_DICT + _COST_DICT_KEY * n if n else _COST_EMPTY_DICT)
        out: dict[str, Any] = {}
        previous = None
        for _ in range(n):
            at = self.pos
            raw, key = self.key()
            # Unique and sorted by UTF-8 bytes, a prefix first (§2.3): bytes compare so.
            if previous is not None and raw <= previous:
                raise DecodeError(f"map keys are not unique and in canonical order (at byte "
                                  f"{at})", reason="not_canonical")
            previous = raw
            out[key] = self.value(depth + 1)
        return out


def _no_ext(code: int, data: bytes) -> Any:
    raise DecodeError(f"ext type {code} is not allowed", reason="ext")


def _fast_decode(data: bytes, limits: Limits) -> Any:
    """msgpack's C decoder, a walk and a re-encoding; any failure is ``DecodeError`` with no
    particular reason (the caller asks ``_Reader`` for it)."""
    value = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                            ext_hook=_no_ext, max_str_len=limits.max_str,
                            max_bin_len=limits.max_bin, max_array_len=limits.max_items,
                            max_map_len=limits.max_items, max_ext_len=0)
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        kind = type(item)
        if kind is dict:
            keys = list(item)
            if not set(map(type, keys)) <= _STR_ONLY or keys != sorted(keys):
                raise DecodeError("map keys", reason="not_canonical")
            values: Any = item.values()
        elif kind is list:
            values = item
        elif kind is float:
            raise DecodeError("float", reason="float")
        else:
            continue
        if depth > limits.max_depth:
            raise DecodeError("too deep", reason="too_deep")
        types = set(map(type, values))
        if types <= _PASS_THROUGH:
            continue
        if float in types:
            raise DecodeError("float", reason="float")
        stack.extend((v, depth + 1) for v in values if type(v) is dict or type(v) is list)
    if pack_value(value) != data:
        raise DecodeError("not canonical", reason="not_canonical")
    return value


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode exactly one canonical value from ``data`` within ``limits`` (PROTOCOL.md §2.4)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError("expected bytes", reason="type")
    data = bytes(data)
    if len(data) > limits.max_bytes:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {limits.max_bytes}",
                          reason="too_large")
    if not data:
        raise DecodeError("empty input", reason="truncated")
    if len(data) * _WORST_PER_BYTE <= budget_of(len(data), limits):
        # Any refusal here is named by the strict reader below (which then refuses too).
        with contextlib.suppress(Exception):
            return _fast_decode(data, limits)
    reader = _Reader(data, limits)
    value = reader.value(0)
    if reader.pos != reader.end:
        raise reader.fail("trailing", "trailing bytes after the value")
    return value
