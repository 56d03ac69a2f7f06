"""The entries of a document: declared items and their acknowledgements, encoded one per
Merkle leaf (PROTOCOL.md §6.4, §6.6), and the one decoder of each.

Each entry is the canonical encoding of one item with a 16-byte salt, so that an inclusion proof
for one person discloses nothing guessable about the others (their leaf hashes are over salted
bytes). ``decode_declared_entry`` and ``decode_ack_entry`` are the only readers of an entry's
bytes: documents, receipts and the store all decode through them.

Each decoder has two paths with one answer. The quick one (msgpack's C decoder, a few type
tests and a byte comparison with the re-encoding) accepts an entry only when it is certainly
what the strict one would accept; anything else goes to the strict one (``codec.decode`` and
checks field by field), which is authoritative and names the fault. A whole-document receipt of
1,000,000 entries is decoded at the quick path's speed (bench/core.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgpack

from bridge.core import codec, merkle
from bridge.core.entry_bounds import CONTAINER_BYTES, containers_allowed, counted_values
from bridge.core.errors import DecodeError, InputError, VerificationError
from bridge.core.json_data import json_data_problem
from bridge.core.times import MAX_JSON_INT

ACK_STATUSES = (
    "RECEIVED", "NOT_RECEIVED", "RECEIVED_UNDECLARED", "PENDING_IDENTIFICATION",
    "IDENTITY_CONFIRMED", "IDENTITY_MISMATCH", "NOT_OWN_NATIONAL", "COMMINGLED",
    "ALREADY_EXCHANGED", "CATEGORY_INELIGIBLE", "DECLINED_REPATRIATION", "WITHHELD",
    "POSTPONED", "DISPUTED",
)
SALT_SIZE = 16
# \Z, not $: "$" also matches before a trailing newline, which would let "P-1\n" through.
ITEM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\Z")
# Many ids at once, each followed by a newline (which no good id holds): one C loop over a
# batch's ids rather than a call and a match an id.
_ITEM_IDS_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}\n)*")
_STR_ONLY = frozenset({str})
MAX_TEXT = 2000


def item_ids_valid(ids: Sequence[object]) -> bool:
    """Whether every one of ``ids`` is an item id ``ITEM_ID_RE`` takes (False: check each)."""
    if not set(map(type, ids)) <= _STR_ONLY:
        return False
    text = "\n".join(cast(Sequence[str], ids)) + "\n"
    # An id holding a newline would pass as two ids: as many newlines as ids, or none does.
    return not ids or (text.count("\n") == len(ids) and
                       _ITEM_IDS_RE.fullmatch(text) is not None)


def _check_item_id(item_id: object, where: str) -> str:
    if not isinstance(item_id, str) or not ITEM_ID_RE.match(item_id):
        raise InputError("an item id is 1-128 characters: letters, digits and . _ : / - ",
                         field=where)
    return item_id


# ---------------------------------------------------------------- items and entries


@dataclass(frozen=True, kw_only=True)
class Item:
    """One declared item: its id and its record (every field but the id)."""

    id: str
    data: Mapping[str, Any]

    def __post_init__(self) -> None:
        check_item(self.id, self.data)


def check_item(item_id: object, data: object) -> None:
    """What an ``Item`` holds, checked without making one: ``InputError`` naming the field."""
    _check_item_id(item_id, "id")
    # type() first: a dict (every record parsed from JSON) skips the ABC's isinstance.
    if not (type(data) is dict or isinstance(data, Mapping)) or "id" in data:
        raise InputError("item data must be a map without 'id'", field="data")


@dataclass(frozen=True, kw_only=True)
class AckItem:
    """One item's acknowledgement."""

    id: str
    status: str
    reason: str | None = None
    evidence: str | None = None

    def __post_init__(self) -> None:
        _check_item_id(self.id, "id")
        if self.status not in ACK_STATUSES:
            # The word itself is never quoted: a shifted column can put a name here.
            raise InputError(f"unknown status; one of: {', '.join(ACK_STATUSES)}",
                             field="status")
        for name in ("reason", "evidence"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
                raise InputError(f"must be text of at most {MAX_TEXT} characters", field=name)


@dataclass(frozen=True, kw_only=True)
class DeclaredEntry:
    index: int
    item_id: str
    salt: bytes
    data: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class AckEntry:
    index: int
    item_id: str
    salt: bytes
    status: str
    reason: str | None
    evidence: str | None
    leaf: bytes | None  # leaf hash of the declared entry acknowledged; None if undeclared


def encode_declared_entry(index: int, salt: bytes, item: Item) -> bytes:
    return encode_declared_record(index, salt, item.id, item.data)


def encode_declared_record(index: int, salt: bytes, item_id: str,
                           data: Mapping[str, Any]) -> bytes:
    """``encode_declared_entry`` of the item (``item_id``, ``data``), checked by the caller
    (``check_item``)."""
    # Keys written in canonical (sorted) order; the record itself is canonicalised first
    # (canonical() builds a new map, so a plain dict needs no defensive copy here).
    record = data if type(data) is dict else dict(data)
    return codec.pack_canonical(
        {"data": codec.canonical(record), "i": index, "id": item_id, "salt": salt})


def encode_ack_entry(index: int, salt: bytes, item: AckItem, leaf: bytes | None) -> bytes:
    return codec.pack_canonical({"evidence": item.evidence, "i": index, "id": item.id,
                                 "leaf": leaf, "reason": item.reason, "salt": salt,
                                 "status": item.status})


# ---------------------------------------------------------------- decoding


_DECLARED_ORDER = ("data", "i", "id", "salt")  # the keys, in canonical (sorted) order
_ACK_ORDER = ("evidence", "i", "id", "leaf", "reason", "salt", "status")
_DECLARED_KEYS = frozenset(_DECLARED_ORDER)
_ACK_KEYS = frozenset(_ACK_ORDER)
_STATUS_SET = frozenset(ACK_STATUSES)

_SMALL = codec.SMALL_LIMITS
_UNPACK: dict[str, Any] = {
    "raw": False, "use_list": True, "strict_map_key": True, "max_str_len": _SMALL.max_str,
    "max_bin_len": _SMALL.max_bin, "max_array_len": _SMALL.max_items,
    "max_map_len": _SMALL.max_items, "max_ext_len": 0,
}
# Bound once: keyword arguments parsed per call cost as much as a small entry's decoding.
_unpack: Callable[[bytes], Any] = functools.partial(msgpack.unpackb, **_UNPACK)
_pack = codec.pack_value
_item_id_match = ITEM_ID_RE.fullmatch
_SCALAR_TYPES = frozenset({str, bytes, int, bool, type(None)})
_STR_TYPE = frozenset({str})


def _where(index: int | None) -> str:
    return "entry" if index is None else f"entry {index}"


def _entry_map(leaf: bytes, index: int | None, keys: frozenset[str]) -> dict[str, Any]:
    """The strict path: decoded by ``codec.decode`` and checked field by field, raising
    ``bad_entry`` with the fault. ``index`` None: the entry is at the index it names."""
    try:
        value = codec.decode(leaf, codec.SMALL_LIMITS)
    except DecodeError as exc:
        raise VerificationError(f"{_where(index)} is not canonical: {exc}",
                                reason="bad_entry") from exc
    if not isinstance(value, dict) or set(value) != keys:
        raise VerificationError(f"{_where(index)} has the wrong fields", reason="bad_entry")
    if index is None:
        if type(value["i"]) is not int or value["i"] < 0:  # true == 1 in Python only
            raise VerificationError("entry has no entry index", reason="bad_entry")
    elif type(value["i"]) is not int:  # peer text, never quoted
        raise VerificationError(f"entry at position {index} has no entry index",
                                reason="bad_entry")
    elif value["i"] != index:
        raise VerificationError(f"entry at position {index} says it is entry {value['i']}",
                                reason="bad_entry")
    salt = value["salt"]
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise VerificationError(f"{_where(index)} salt is not {SALT_SIZE} bytes",
                                reason="bad_entry")
    try:
        _check_item_id(value["id"], "id")
    except InputError as exc:
        raise VerificationError(f"{_where(index)}: {exc}", reason="bad_entry") from exc
    return value


# key tuple as found -> whether it is in canonical order: the records of one document share
# their keys, so each key set is sorted once. Bounded in entries and in each one's size, so
# hostile variety cannot grow it without end (beyond the bound the test simply runs again).
_KEY_ORDER: dict[tuple[Any, ...], bool] = {}
_KEY_ORDER_MAX = 1024  # key sets kept: at most about 2 MiB, whatever a peer sends
_KEY_ORDER_MAX_KEYS = 32


def _sorted_str_keys(value: dict[Any, Any]) -> bool:
    """Every key a str, in canonical (sorted, hence unique) order: §2.3 for str keys, since
    code point order is UTF-8 byte order. Tested in C, no Python loop."""
    return _keys_in_order(tuple(value))


def _keys_in_order(keys: tuple[Any, ...]) -> bool:
    """``_sorted_str_keys`` of a map with these keys, in this order."""
    known = _KEY_ORDER.get(keys)
    if known is not None:
        return known
    ok = set(map(type, keys)) <= _STR_TYPE and list(keys) == sorted(keys)
    if len(_KEY_ORDER) < _KEY_ORDER_MAX and len(keys) <= _KEY_ORDER_MAX_KEYS and \
            sum(map(len, keys)) <= 512:
        _KEY_ORDER[keys] = ok
    return ok


def _plain(value: Any, depth: int) -> bool:
    """True if ``value`` is certainly canonical apart from integer/length forms (which the
    byte comparison with a re-pack checks): sorted str keys, no floats, shallow enough."""
    if depth > _SMALL.max_depth:
        return False
    kind = type(value)
    if kind is dict:
        if not _sorted_str_keys(value):
            return False
        values: Any = value.values()
    elif kind is list:
        values = value
    else:
        return kind in _SCALAR_TYPES
    if set(map(type, values)) <= _SCALAR_TYPES:  # a flat record: no Python loop
        return True
    for v in values:
        if type(v) not in _SCALAR_TYPES and not _plain(v, depth + 1):
            return False
    return True


_JSON_SCALARS = frozenset({str, bool, type(None)})
_JSON_TYPES = frozenset({str, bool, type(None), int, dict, list})


def _plain_json(value: Any, depth: int) -> bool:
    """``_plain`` and, in the same walk, JSON data (``json_data_problem`` finds nothing): maps
    and arrays of text, booleans, nil and integers within ±``MAX_JSON_INT``. False means
    "ask the strict path", which names the fault."""
    if depth > _SMALL.max_depth:
        return False
    kind = type(value)
    if kind is dict:
        if not _sorted_str_keys(value):
            return False
        values: Any = value.values()
    elif kind is list:
        values = value
    else:
        return False
    types = set(map(type, values))
    if types <= _JSON_SCALARS:
        return True
    if not types <= _JSON_TYPES:
        return False
    for v in values:
        t = type(v)
        if t is str:
            continue
        if t is int:
            if not -MAX_JSON_INT <= v <= MAX_JSON_INT:
                return False
        elif (t is dict or t is list) and not _plain_json(v, depth + 1):
            return False
    return True


def _quick_map(leaf: bytes, index: int | None, order: tuple[str, ...]) -> dict[str, Any] | None:
    """The quick path's common part: a map with exactly ``order``'s keys in that order, at
    ``index`` (or any index when None), with a valid id and salt; else None."""
    if len(leaf) > _SMALL.max_bytes:
        return None
    try:
        v = _unpack(leaf)
    except Exception:  # any malformation: the strict path says which
        return None
    if type(v) is not dict or tuple(v) != order:
        return None
    i = v["i"]
    if (type(i) is not int or (i != index if index is not None else i < 0)
            or type(v["id"]) is not str or not _item_id_match(v["id"])
            or type(v["salt"]) is not bytes or len(v["salt"]) != SALT_SIZE):
        return None
    return v


def _declared_map(leaf: bytes, index: int | None) -> dict[str, Any]:
    """The one decoder of a declared entry (PROTOCOL.md §6.4): its map, every field checked."""
    v = _quick_map(leaf, index, _DECLARED_ORDER)
    if (v is not None and type(v["data"]) is dict and _plain(v["data"], 1)
            and _pack(v) == leaf):
        return v
    v = _entry_map(leaf, index, _DECLARED_KEYS)
    if not isinstance(v["data"], dict):
        raise VerificationError(f"{_where(index)} data is not a map", reason="bad_entry")
    return v


_FLAT_TYPES = frozenset({str, bytes, int, bool, type(None)})


def check_record_size(data: Mapping[str, Any], leaf: bytes, where: str) -> None:
    """The sender's side of the ``CONTAINER_BYTES`` rule for a record it encodes as ``leaf``:
    ``InputError`` naming ``where``, so that nothing is sent that its peer must refuse. A
    flat record (its own map only) always passes, and is told at the cost of one C loop."""
    allowed = containers_allowed(leaf)
    # A flat record counts its own map and at most each of its values (negative integers).
    if set(map(type, data.values())) <= _FLAT_TYPES and len(data) < allowed:
        return
    if counted_values(dict(data), allowed) > allowed:
        raise InputError(f"holds more maps, arrays and negative integers than one per "
                         f"{CONTAINER_BYTES} bytes of its encoding (empty ones, mostly)",
                         field=where)


def _check_containers(data: dict[str, Any], leaf: bytes, index: int | None) -> None:
    allowed = containers_allowed(leaf)
    if counted_values(data, allowed) > allowed:
        raise VerificationError(
            f"{_where(index)} data holds more maps, arrays and negative integers than its "
            f"size allows (one per {CONTAINER_BYTES} bytes of the entry)", reason="bad_entry")


def _quick_ack_fields(v: dict[str, Any]) -> bool:
    reason, evidence, leaf = v["reason"], v["evidence"], v["leaf"]
    return (type(v["status"]) is str and v["status"] in _STATUS_SET
            and (reason is None or (type(reason) is str and len(reason) <= MAX_TEXT))
            and (evidence is None or (type(evidence) is str and len(evidence) <= MAX_TEXT))
            and (leaf is None or (type(leaf) is bytes and len(leaf) == merkle.HASH_SIZE)))


def _ack_map(leaf: bytes, index: int | None) -> dict[str, Any]:
    """The one decoder of an acknowledgement entry (PROTOCOL.md §6.6): its map, every field
    checked."""
    v = _quick_map(leaf, index, _ACK_ORDER)
    if v is not None and _quick_ack_fields(v) and _pack(v) == leaf:
        return v
    v = _entry_map(leaf, index, _ACK_KEYS)
    try:
        AckItem(id=v["id"], status=v["status"], reason=v["reason"], evidence=v["evidence"])
    except InputError as exc:
        raise VerificationError(f"ack {_where(index)}: {exc}", reason="bad_entry") from exc
    if v["leaf"] is not None and (not isinstance(v["leaf"], bytes)
                                  or len(v["leaf"]) != merkle.HASH_SIZE):
        raise VerificationError(f"ack {_where(index)} leaf is not a 32-byte hash",
                                reason="bad_entry")
    return v


def decode_declared_entry(leaf: bytes, index: int | None = None) -> DeclaredEntry:
    """The declared entry in ``leaf`` at ``index``, or at the index it names when ``index``
    is None; raises ``VerificationError`` (``bad_entry``)."""
    v = _declared_map(leaf, index)
    return DeclaredEntry(index=v["i"], item_id=v["id"], salt=v["salt"], data=v["data"])


def decode_ack_entry(leaf: bytes, index: int | None = None) -> AckEntry:
    """The acknowledgement entry in ``leaf`` at ``index``, or at the index it names when
    ``index`` is None; raises ``VerificationError`` (``bad_entry``)."""
    v = _ack_map(leaf, index)
    return AckEntry(index=v["i"], item_id=v["id"], salt=v["salt"], status=v["status"],
                    reason=v["reason"], evidence=v["evidence"], leaf=v["leaf"])


def declared_records(leaves: Sequence[bytes], first: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(item id, record) of each of a run of declared entries, entry ``n`` at index
    ``first + n``, each decoded as ``decode_declared_entry`` decodes it and its record JSON
    data (``json_data_problem``); else ``VerificationError`` (``bad_entry``) naming the entry.

    A received chunk's entries, in one pass: one Packer for the run's byte comparisons and one
    walk of each record for both rules, instead of a Packer, two walks and an object each.
    ``entry_runs.declared_columns`` is its quicker form for a whole chunk."""
    pack = codec.packer()
    out = []
    for n, leaf in enumerate(leaves):
        index = first + n
        v = _quick_map(leaf, index, _DECLARED_ORDER)
        if (v is None or type(v["data"]) is not dict or not _plain_json(v["data"], 1)
                or pack(v) != leaf):
            v = _declared_map(leaf, index)  # authoritative: raises, or decides it is good
            problem = json_data_problem(v["data"], "data")
            if problem is not None:
                raise VerificationError(f"entry {index} {problem[0]}: {problem[1]}",
                                        reason="bad_entry")
        _check_containers(v["data"], leaf, index)
        out.append((v["id"], v["data"]))
    return out


AckRecord = tuple[int, str, str, str | None, str | None, bytes | None]
"""(index, item id, status, reason, evidence, declared leaf hash or None) of an
acknowledgement entry: ``AckEntry`` without its salt, as a received chunk's check needs it."""


def ack_records(leaves: Sequence[bytes], first: int = 0) -> list[AckRecord]:
    """Each of a run of acknowledgement entries, entry ``n`` at index ``first + n``, decoded
    as ``decode_ack_entry`` decodes it (``VerificationError``, ``bad_entry``, naming the
    entry), with one Packer for the run's byte comparisons and no object per entry."""
    pack = codec.packer()
    out: list[AckRecord] = []
    for n, leaf in enumerate(leaves):
        index = first + n
        v = _quick_map(leaf, index, _ACK_ORDER)
        if v is None or not _quick_ack_fields(v) or pack(v) != leaf:
            v = _ack_map(leaf, index)  # authoritative: raises, or decides it is good
        out.append((index, v["id"], v["status"], v["reason"], v["evidence"], v["leaf"]))
    return out


AckStatement = tuple[str, bytes | None, str, str | None, str | None]
"""(item id, declared leaf hash or None, status, reason, evidence) of one entry to encode."""


def encode_ack_statements(first: int, salts: Sequence[bytes],
                          rows: Sequence[AckStatement]) -> list[bytes]:
    """``encode_ack_entry`` of each row, entry ``n`` at ``first + n`` with salt ``salts[n]``,
    each statement checked as ``AckItem`` checks it (an ``InputError`` naming the field)
    without making one: the very bytes, one Packer for the run."""
    pack = codec.packer()
    out = []
    for n, (item_id, leaf, status, reason, evidence) in enumerate(rows):
        if not (type(item_id) is str and _item_id_match(item_id) and type(status) is str
                and status in _STATUS_SET
                and (reason is None or (type(reason) is str and len(reason) <= MAX_TEXT))
                and (evidence is None or (type(evidence) is str and len(evidence) <= MAX_TEXT))
                and (leaf is None or (type(leaf) is bytes and len(leaf) == merkle.HASH_SIZE))):
            AckItem(id=item_id, status=status, reason=reason, evidence=evidence)  # raises
            raise InputError("a declared leaf hash is 32 bytes", field="leaf")
        out.append(pack({"evidence": evidence, "i": first + n, "id": item_id, "leaf": leaf,
                         "reason": reason, "salt": salts[n], "status": status}))
    return out


# The same decoders over all the entries of a document, giving only the fields a whole-document
# check needs: a million entries without a million objects (bench/core.py, figure (c)).


def declared_item_ids(leaves: Sequence[bytes], first: int = 0) -> list[str]:
    """The item id of each declared entry, each decoded at its position (the first at
    ``first``) as by ``decode_declared_entry``."""
    return [_declared_map(leaf, i)["id"] for i, leaf in enumerate(leaves, first)]


def acknowledged_items(leaves: Sequence[bytes], first: int = 0
                       ) -> list[tuple[str, str, bytes | None]]:
    """(item id, status, declared leaf hash or None) of each acknowledgement entry, each
    decoded at its position (the first at ``first``) as by ``decode_ack_entry``."""
    out = []
    for i, leaf in enumerate(leaves, first):
        v = _ack_map(leaf, i)
        out.append((v["id"], v["status"], v["leaf"]))
    return out
