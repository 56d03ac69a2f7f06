"""A received chunk's declared entries decoded and checked as one run: what
``entries.declared_records`` answers, entry by entry, for a whole chunk at once, with no Python
step per entry (PROTOCOL.md §6.4: each entry canonical, its record JSON data).

The quick path runs every per-entry test of ``entries._quick_map`` and ``_plain_json`` on
columns, in C loops (``map``, ``set``, ``itertools``); anything it is not certain of goes to
``declared_records``, which is authoritative and names the fault. A 5,000-entry chunk is
decoded, checked and made into rows in about half the time of the loop.
"""

from __future__ import annotations

import gc
import itertools
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import msgpack

from bridge.core import codec
from bridge.core.entries import _DECLARED_ORDER as DECLARED_ORDER
from bridge.core.entries import _JSON_TYPES as JSON_TYPES
from bridge.core.entries import _SMALL as SMALL
from bridge.core.entries import _UNPACK as UNPACK
from bridge.core.entries import SALT_SIZE, declared_records
from bridge.core.entries import _item_id_match as item_id_match
from bridge.core.entries import _keys_in_order as keys_in_order
from bridge.core.entry_bounds import containers_allowed, entry_fits
from bridge.core.times import MAX_JSON_INT

_STR_TYPE = frozenset({str})


def declared_columns(leaves: Sequence[bytes], first: int = 0
                     ) -> tuple[list[str], list[dict[str, Any]]]:
    """``declared_records`` as two columns: the item ids and the records, in entry order."""
    run = _declared_run(leaves, first)
    if run is not None:
        return run
    records = declared_records(leaves, first)  # raises, naming the first bad entry
    return [r[0] for r in records], [r[1] for r in records]


_get_data, _get_i = operator.itemgetter("data"), operator.itemgetter("i")
_get_id, _get_salt = operator.itemgetter("id"), operator.itemgetter("salt")


def _declared_run(leaves: Sequence[bytes], first: int) -> tuple[list[str], list[Any]] | None:
    """The quick path of ``declared_records`` over a whole run at once, every per-entry test
    of ``_quick_map`` and ``_plain_json`` made on columns by C loops (``map``, ``set``): the
    ids and records, or None for "ask the entries one by one" (which names the fault).

    The run is decoded by one Unpacker over the entries' concatenation, with the same limits
    per value. Where one value ends is not trusted: each value re-packed must give back its
    own entry, byte for byte, so an entry that ran into the next (or any non-canonical form)
    is caught exactly as by the one-entry path's comparison."""
    if not leaves or max(map(len, leaves)) > SMALL.max_bytes:
        return None
    values = _decode_run(leaves)
    if values is None:
        return None
    n = len(leaves)
    if (len(values) != n or set(map(type, values)) != _DICT_TYPE
            or set(map(tuple, values)) != {DECLARED_ORDER}):
        return None
    indexes, ids = list(map(_get_i, values)), list(map(_get_id, values))
    salts, records = list(map(_get_salt, values)), list(map(_get_data, values))
    if (set(map(type, indexes)) != _INT_TYPE or indexes != list(range(first, first + n))
            or set(map(type, ids)) != _STR_TYPE or not all(map(item_id_match, ids))
            or set(map(type, salts)) != _BYTES_TYPE or set(map(len, salts)) != {SALT_SIZE}
            or set(map(type, records)) != _DICT_TYPE or not _all_plain_json(records)
            or list(map(codec.packer(), values)) != list(leaves)):
        return None
    return ids, records


def declared_entry_fits(value: Any, leaf: bytes, counted: int) -> bool:
    """Whether a declared entry keeps PROTOCOL.md §6.4's rule. The entry's own map and its
    four values are five of ``counted``; the record's maps, arrays and values the rest. Only
    a record with more of them than its allowance is counted exactly (its negative
    integers, not all its values)."""
    return counted - 5 <= containers_allowed(leaf) or entry_fits(value, leaf)


def _decode_run(leaves: Sequence[bytes],
                fits: Callable[[Any, bytes, int], bool] = declared_entry_fits
                ) -> list[Any] | None:
    """Each entry's value, decoded from the run's concatenation, or None (malformed, or a
    value ``fits`` refuses: by default one holding more maps, arrays and negative integers
    than its entry's size allows, ``entry_bounds``). The hooks count every map and array as
    it is built, and its values (each could be a negative integer: a bound of them at the
    cost of a ``len``), and ``fits`` is asked after each value with that entry's count, so a
    hostile run is given up after one entry's worth of objects (at most 64 KiB of input),
    never after the whole run's."""
    count = 0

    def counted(container: Any) -> Any:
        nonlocal count
        count += 1 + len(container)
        return container

    joined = b"".join(leaves)
    unpacker = msgpack.Unpacker(max_buffer_size=len(joined), object_hook=counted,
                                list_hook=counted, **UNPACK)
    values = []
    try:
        with _no_cycle_collection():
            unpacker.feed(joined)
            for leaf in leaves:
                before = count
                values.append(unpacker.unpack())
                if not fits(values[-1], leaf, count - before):
                    return None
            unpacker.unpack()  # a value after the last: the entries one by one say which
    except msgpack.OutOfData:
        return values
    except Exception:  # any malformation: the entries one by one say which
        return None
    return None


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """CPython's cycle collector paused while a run is decoded. It runs by allocation count
    (a young collection each 700 containers built, older ones as they survive, each of those
    traversing every container the process holds: https://docs.python.org/3/library/gc.html,
    ``gc.set_threshold``), and a run builds two or three containers an entry, every one kept
    until the chunk is stored: some 20 collections a 5,000-entry chunk, none of which can
    free anything, as what msgpack builds is a tree (no cycle). Measured: about half of the
    decoding's CPU on a 100,000-entry manifest. Memory is unchanged (reference counting frees
    what is dropped); the pause ends with the decoding, bounded by the run's size."""
    if not gc.isenabled():  # paused by someone else: theirs to resume
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_DICT_TYPE, _INT_TYPE, _BYTES_TYPE = frozenset({dict}), frozenset({int}), frozenset({bytes})


def _of_type(values: list[Any], kind: type) -> list[Any]:
    return list(itertools.compress(values, map(operator.is_, map(type, values),
                                               itertools.repeat(kind))))


def _all_plain_json(maps: list[Any]) -> bool:
    """``_plain_json(m, 1)`` of every map in ``maps``, a level of nesting at a time: the keys
    of each distinct key set checked once, every value's type and every integer's range
    tested in C loops."""
    lists: list[Any] = []
    depth = 1
    while maps or lists:
        if depth > SMALL.max_depth:
            return False
        if not all(map(keys_in_order, set(map(tuple, maps)))):
            return False
        values = list(itertools.chain(itertools.chain.from_iterable(map(dict.values, maps)),
                                      itertools.chain.from_iterable(lists)))
        types = set(map(type, values))
        if not types <= JSON_TYPES:
            return False
        if int in types:
            ints = _of_type(values, int)
            if min(ints) < -MAX_JSON_INT or max(ints) > MAX_JSON_INT:
                return False
        maps = _of_type(values, dict) if dict in types else []
        lists = _of_type(values, list) if list in types else []
        depth += 1
    return True


__all__ = ["declared_columns"]
