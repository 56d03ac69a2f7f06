"""The one-walk entries of a batch (``declared_leaves``) are the three-walk entries, byte for
byte, and refuse what they refuse with the same message and field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.declared_leaves import declared_records
from bridge.core.documents import declared_record_leaf
from bridge.core.entries import ITEM_ID_RE, check_item, check_record_size, item_ids_valid
from bridge.core.errors import InputError
from bridge.core.times import MAX_JSON_INT


def _salt(n: int) -> bytes:
    return bytes([n % 256]) * 16


def _three_walks(first: int, records: list[tuple[Any, Any]]) -> list[bytes]:
    out = []
    for n, (item_id, data) in enumerate(records, start=first):
        check_item(item_id, data)
        leaf = declared_record_leaf(n, _salt(n), item_id, data)
        check_record_size(data, leaf, f"items[{n}].data")
        out.append(leaf)
    return out


def _outcome(fn: Any, first: int, records: list[tuple[Any, Any]]) -> Any:
    try:
        return fn(first, records)
    except InputError as err:
        return ("refused", err.detail, err.field, err.code)


def _one_walk(first: int, records: list[tuple[Any, Any]]) -> list[bytes]:
    return declared_records(first, [_salt(n) for n in range(first, first + len(records))],
                            records)


SCALAR = st.one_of(st.text(max_size=8), st.booleans(), st.none(),
                   st.integers(-MAX_JSON_INT - 2, MAX_JSON_INT + 2),
                   st.integers(min_value=1 << 63, max_value=1 << 65),
                   st.floats(allow_nan=True), st.binary(max_size=3))
VALUE = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
RECORD = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "id"), VALUE,
                         max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=4), st.integers(0, 5))
def test_any_record_batch_gets_the_entries_or_refusal_of_the_three_walks(
        records: list[dict[str, Any]], first: int) -> None:
    pairs: list[tuple[Any, Any]] = [(f"item-{k}", r) for k, r in enumerate(records)]
    assert _outcome(_one_walk, first, pairs) == _outcome(_three_walks, first, pairs)


BAD = [
    pytest.param({"n": MAX_JSON_INT + 1}, id="integer-beyond-json"),
    pytest.param({"tags": ["a", -MAX_JSON_INT - 1]}, id="list-integer-beyond-json"),
    pytest.param({"n": 1.5}, id="float"),
    pytest.param({"b": b"raw"}, id="binary"),
    pytest.param({"s": "\ud800"}, id="lone-surrogate"),
    pytest.param({"s": ["ok", "\udfff"]}, id="lone-surrogate-in-list"),
    pytest.param({"a": [[]] * 40}, id="too-many-empty-arrays"),
    pytest.param({chr(65 + k): [] for k in range(50)}, id="flat-empty-lists-past-the-size-rule"),
    pytest.param({1: "x"}, id="key-not-text"),
    pytest.param({"id": "twice"}, id="id-inside-the-record"),
]


@pytest.mark.parametrize("record", BAD)
def test_a_bad_record_last_in_its_batch_is_refused_naming_it_as_before(record: Any) -> None:
    pairs: list[tuple[Any, Any]] = [("a", {"x": "1", "tags": ["t"]}), ("b", {"y": True}),
                                    ("c", record)]
    refused = _outcome(_one_walk, 7, pairs)
    assert refused[0] == "refused"
    assert refused[2].startswith("items[9]") or refused[2] == "data"  # check_item: "data"
    assert refused == _outcome(_three_walks, 7, pairs)


def test_a_bad_item_id_is_refused_as_before() -> None:
    pairs: list[tuple[Any, Any]] = [("ok", {}), ("bad id with spaces", {"x": "1"})]
    refused = _outcome(_one_walk, 0, pairs)
    assert refused[0] == "refused" and refused[2] == "id"
    assert refused == _outcome(_three_walks, 0, pairs)


def test_flat_records_of_every_common_shape_give_the_same_bytes() -> None:
    pairs: list[tuple[Any, Any]] = [
        ("p1", {"surname": "Avenor", "kind": "person", "seal_numbers": ["S1", "S2"]}),
        ("p2", {"b": None, "a": False, "n": MAX_JSON_INT, "m": -MAX_JSON_INT, "e": []}),
        ("p3", {}), ("p4", {"one": "x"}), ("p5", {"nested": {"z": 1, "a": [1, {"k": "v"}]}})]
    assert _one_walk(3, pairs) == _three_walks(3, pairs)


@pytest.mark.parametrize("fields", [4, 5, 7, 15, 16, 40, 70_000])
def test_records_whose_entry_headers_change_size_give_the_same_bytes(fields: int) -> None:
    """The entry is packed as an array whose header is replaced by the maps' headers: around
    each size where a header grows (a record of 4 fields is an array of 14, one of 5 of 16;
    15 and 16 fields are the map's own step; 70,000 its 32-bit form), the bytes are the maps'."""
    record = {f"f{k:05d}": "v" if k % 2 else k for k in range(fields)}
    pairs: list[tuple[Any, Any]] = [("a", record), ("b", dict(reversed(record.items())))]
    assert _one_walk(0, pairs) == _three_walks(0, pairs)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,130}", fullmatch=True),
                          st.text(alphabet="ab\n-. ", max_size=4), st.integers()), max_size=5))
def test_a_batch_of_ids_is_valid_exactly_when_each_id_is(ids: list[Any]) -> None:
    assert item_ids_valid(ids) == all(isinstance(i, str) and ITEM_ID_RE.match(i) for i in ids)


@pytest.mark.parametrize("bad", ["P-1\n", "\nP-1", "P-1\nP-2", "x" * 129, "", "-P", 7, None])
def test_an_id_that_would_split_or_join_a_batch_of_ids_is_refused_as_before(bad: Any) -> None:
    pairs: list[tuple[Any, Any]] = [("P-0", {"x": "1"}), (bad, {"x": "2"}), ("P-2", {})]
    refused = _outcome(_one_walk, 4, pairs)
    assert refused[0] == "refused" and refused[2] == "id"
    assert refused == _outcome(_three_walks, 4, pairs)
