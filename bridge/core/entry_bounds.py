"""What a declared entry's record may hold for its size (PROTOCOL.md §6.4): at most one map,
array or negative integer for each ``CONTAINER_BYTES`` bytes of the entry.

Each of these is one byte on the wire at its smallest and a decoded object of its own: an
empty array or map is a list or dict of 56 to 64 bytes, a negative integer from -32 to -6 an
int of 28 (CPython shares only -5 to 256). Without the rule a chunk of entries full of them is
well formed and takes some 40 to 70 times its size in memory (gigabytes for one envelope).
With it, what the rule counts takes at most about 18 bytes for each byte of the entry; real
records (small maps of text, a few lists, the odd negative number) use far fewer. Every other
value that is a new object (a str of two letters or more, a bin of two bytes or more, an
integer of 128 or more) needs at least two bytes, and most of them three.
"""

from __future__ import annotations

from typing import Any

CONTAINER_BYTES = 4
_UNCOUNTED = frozenset({str, bytes, bool, type(None)})


def containers_allowed(leaf: bytes) -> int:
    """The most maps, arrays and negative integers (the record's own map included) an entry
    of ``leaf``'s size may hold in its record."""
    return len(leaf) // CONTAINER_BYTES


def counted_values(value: Any, allowed: int) -> int:
    """Maps, arrays and negative integers in ``value`` (itself included), counted until there
    are more than ``allowed``: the walk stops there, so it costs no more than the entry's
    size. Its depth is bounded by the decoder's limits (or, for a record being sent, by
    ``codec.canonical``). ``type() is int``: a bool is no integer here (§2.1)."""
    values: Any = value.values() if type(value) is dict else value
    if set(map(type, values)) <= _UNCOUNTED:  # a C loop: text only, the common record
        return 1
    count = 1
    for v in values:
        t = type(v)
        if t is dict or t is list:
            count += counted_values(v, allowed - count)
        elif t is int and v < 0:
            count += 1
        else:
            continue
        if count > allowed:
            break
    return count


def entry_fits(value: Any, leaf: bytes) -> bool:
    """Whether a decoded entry ``value`` of ``leaf`` keeps the rule in its ``data``, counted;
    an entry of the wrong shape passes here (its own checks refuse it)."""
    allowed = containers_allowed(leaf)
    data = value.get("data") if type(value) is dict else None
    return type(data) is not dict or counted_values(data, allowed) <= allowed
