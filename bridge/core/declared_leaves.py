"""Declared entries of a batch of records, each record walked once.

``documents.declared_record_leaf`` then ``entries.check_record_size`` walk a record three times:
for JSON data (``json_data_problem``), for its canonical form (``codec.canonical``) and for its
maps and arrays (the ``CONTAINER_BYTES`` rule); with a new msgpack Packer for each. Nearly every
record of a roster or manifest is a map of text, booleans, nulls, JSON-safe integers and lists
of those: for such a record one look at the types of its values answers all three (it is JSON
data, its canonical form is its keys sorted, it holds one map and one array a list), and one
Packer serves the batch. Any other record, or one the fast look does not pass, takes the
three walks, so every verdict, message and field name is theirs (``tests/test_declared_leaves.py``
compares the two on good and bad records).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack

from bridge.core import codec
from bridge.core.documents import declared_record_leaf
from bridge.core.entries import check_item, check_record_size, item_ids_valid
from bridge.core.entry_bounds import containers_allowed
from bridge.core.errors import DecodeError
from bridge.core.times import MAX_JSON_INT

_SCALARS = frozenset({str, bool, type(None)})
_WITH_INTS = frozenset({str, bool, type(None), int})
_WITH_LISTS = frozenset({str, bool, type(None), int, list})


def _ints_safe(values: Sequence[Any]) -> bool:
    """Every integer of ``values`` one JSON readers agree on (RFC 7493 §2.2)."""
    return all(-MAX_JSON_INT <= v <= MAX_JSON_INT for v in values if v.__class__ is int)


def _negatives(values: Sequence[Any]) -> int:
    """How many of ``values`` are negative integers (each counts in PROTOCOL.md §6.4's rule)."""
    return sum(1 for v in values if v.__class__ is int and v < 0)


def _flat_canonical(data: dict[str, Any]
                    ) -> tuple[tuple[str, ...], tuple[Any, ...], int] | None:
    """(the keys of ``data`` in canonical order, its values in that order, its maps, arrays
    and negative integers) if it is a map of scalars and lists of scalars that are JSON data;
    else None (the slow walks decide)."""
    try:
        order, getter = codec.key_plan(tuple(data))
    except DecodeError:  # a key that is not text
        return None
    values = getter(data)
    kinds = set(map(type, values))
    if kinds <= _SCALARS:
        return order, values, 1
    if not kinds <= _WITH_LISTS or (int in kinds and not _ints_safe(values)):
        return None
    containers = 1 + (_negatives(values) if int in kinds else 0)
    for v in values:
        if v.__class__ is list:
            inner = set(map(type, v))
            if not inner <= _WITH_INTS or (int in inner and not _ints_safe(v)):
                return None
            containers += 1 + (_negatives(v) if int in inner else 0)
    return order, values, containers


# The entry {"data": record, "i": n, "id": item_id, "salt": salt} (keys in canonical order,
# PROTOCOL.md §2 rule 3) packed without building its two maps: one array of the record's keys
# and values, then "i", n, "id", item_id, "salt", salt, packed in one call; its array header
# is then replaced by the entry's map header, "data" and the record's map header. A map's
# pairs are packed exactly as the same keys and values one after another in an array
# (MessagePack spec, "map format family"), so the bytes are those of packing the two maps.
_TAIL = ("i", None, "id", None, "salt", None)
_PLANS: dict[tuple[str, ...], tuple[list[Any], bytes, int]] = {}
_PLANS_MAX = 4096


def _entry_plan(order: tuple[str, ...]) -> tuple[list[Any], bytes, int]:
    """(the array template of a record of keys ``order``, the bytes that replace its header,
    that header's length)."""
    plan = _PLANS.get(order)
    if plan is None:
        m = len(order)
        template: list[Any] = [None] * (2 * m)
        template[0::2] = order
        template += _TAIL
        headers = msgpack.Packer()  # the shortest header of each size, as packing writes it
        lead = b"\x84\xa4data" + headers.pack_map_header(m)
        plan = (template, lead, len(headers.pack_array_header(len(template))))
        if len(_PLANS) < _PLANS_MAX:  # bounded, as codec's key plans
            _PLANS[order] = plan
    return plan


def _fast_leaf(pack: Callable[[Any], bytes], n: int, salt: bytes, item_id: str,
               data: Mapping[str, Any]) -> bytes | None:
    """Entry ``n`` if the one look passes it and it keeps the ``CONTAINER_BYTES`` rule
    (``entry_bounds``)."""
    flat = _flat_canonical(data) if data.__class__ is dict else None
    if flat is None:
        return None
    order, values, containers = flat
    template, lead, skip = _entry_plan(order)
    pairs = template.copy()
    pairs[1::2] = (*values, n, item_id, salt)
    try:  # a text with a lone surrogate packs to nothing: the slow path says so
        leaf = lead + pack(pairs)[skip:]
    except (OverflowError, ValueError, TypeError):
        return None
    return leaf if containers_allowed(leaf) >= containers else None


def declared_records(first: int, salts: Sequence[bytes],
                     records: Sequence[tuple[str, Mapping[str, Any]]]) -> list[bytes]:
    """Entries ``first``, ``first + 1``, ... of (item id, record) pairs, each checked as
    ``check_item``, ``declared_record_leaf`` and ``check_record_size`` check it, with their
    errors; ``salts[k]`` is entry ``first + k``'s salt."""
    pack = codec.packer()
    out = []
    ids_valid = item_ids_valid([item_id for item_id, _ in records])
    for n, (item_id, data), salt in zip(itertools.count(first), records, salts):
        if not ids_valid or data.__class__ is not dict or "id" in data:
            check_item(item_id, data)  # all it checks, with its error: else a good id, a map
        leaf = _fast_leaf(pack, n, salt, item_id, data)
        if leaf is None:
            leaf = declared_record_leaf(n, salt, item_id, data)
            check_record_size(data, leaf, f"items[{n}].data")
        out.append(leaf)
    return out


__all__ = ["declared_records"]
