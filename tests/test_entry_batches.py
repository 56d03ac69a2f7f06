"""The batch decoders of a received chunk's entries (``entries.declared_records``,
``entry_runs.declared_columns``, ``entries.ack_records``) and the batch encoder of an
acknowledgement of all items (``AckStream.add_uniform``) do what the one-entry ones do. The
declared entries' decoders accept and refuse exactly what ``decode_declared_entry`` and
``json_data_problem`` do, one entry at a time: a non-canonical entry (keys out of order, an
integer in a longer form than it needs, a float, a second value), a record that is not JSON
data, an entry that ends inside the next, or an entry at the wrong index is refused with the
same reason, ``bad_entry``."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import codec
from bridge.core.ack_runs import _ack_run, ack_columns, encode_ack_entries
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import SignedHeader, sign_document
from bridge.core.entries import (
    ACK_STATUSES,
    AckItem,
    Item,
    ack_records,
    declared_records,
    decode_ack_entry,
    decode_declared_entry,
    encode_ack_entry,
    encode_declared_entry,
)
from bridge.core.entry_runs import declared_columns
from bridge.core.errors import InputError, VerificationError
from bridge.core.json_data import json_data_problem
from bridge.core.streaming import AckStream, DocumentStream
from bridge.store.entry_fields import record_fields, records_fields

SALT = b"\x07" * 16


def one_at_a_time(leaves: list[bytes], first: int) -> list[tuple[str, Any]] | str:
    """What the per-entry decoders say: the records, or the reason of the first refusal."""
    out = []
    for n, leaf in enumerate(leaves):
        try:
            entry = decode_declared_entry(leaf, first + n)
        except VerificationError as exc:
            return exc.reason
        if json_data_problem(entry.data, "data") is not None:
            return "bad_entry"
        out.append((entry.item_id, entry.data))
    return out


def batch(leaves: list[bytes], first: int) -> list[tuple[str, Any]] | str:
    try:
        return declared_records(leaves, first)
    except VerificationError as exc:
        return exc.reason


def entry(index: int, data: dict[str, Any], *, order: list[str] | None = None) -> bytes:
    """An entry packed as given (keys in ``order``, no canonical form imposed)."""
    fields = {"data": data, "i": index, "id": f"ITEM-{index}", "salt": SALT}
    keys = order or sorted(fields)
    return msgpack.packb({k: fields[k] for k in keys}, use_bin_type=True)


def test_entries_of_a_chunk_decode_as_one_at_a_time() -> None:
    leaves = [encode_declared_entry(8 + n, SALT, Item(id=f"P-{n}", data={
        "surname": "Avenor", "seal_numbers": [f"S{n}"], "rank": "private", "n": n,
        "nested": {"b": [None, True], "a": -5}})) for n in range(4)]
    assert batch(leaves, 8) == one_at_a_time(leaves, 8)
    assert [item_id for item_id, _ in declared_records(leaves, 8)] == [
        "P-0", "P-1", "P-2", "P-3"]


@pytest.mark.parametrize("leaf", [
    entry(0, {"b": 1, "a": 2}),  # record keys out of order
    entry(0, {"a": 1}, order=["i", "data", "id", "salt"]),  # entry keys out of order
    entry(0, {"a": {"z": 1, "y": 2}}),  # nested keys out of order
    entry(0, {"a": 1.5}),  # a float
    entry(0, {"a": b"raw"}),  # a bin: no JSON reader shows it
    entry(0, {"a": 1 << 60}),  # beyond I-JSON's integers
    entry(0, {"a": [1 << 53]}),
    entry(0, {"a": 1}) + b"\xc0",  # a second value after the entry
    entry(0, {"a": 1})[:-1],  # truncated
    entry(1, {"a": 1}),  # says it is entry 1, at position 0
    entry(0, {"a": 1}).replace(b"\xa1a\x01", b"\xa1a\xcc\x01"),  # 1 in a uint 8
    entry(0, {"a": 1}).replace(b"\xa1a", b"\xd9\x01a"),  # a key in a str 8
], ids=["record_keys_unsorted", "entry_keys_unsorted", "nested_keys_unsorted", "float",
        "bin_in_record", "integer_beyond_json", "integer_beyond_json_in_array",
        "trailing_value", "truncated", "wrong_index", "integer_not_shortest",
        "key_length_not_shortest"])
def test_non_canonical_or_non_json_entry_in_a_chunk_is_refused(leaf: bytes) -> None:
    good = entry(1, {"a": 1})
    assert one_at_a_time([leaf, good], 0) == "bad_entry"
    assert batch([leaf, good], 0) == columns([leaf, good], 0) == "bad_entry"
    assert batch([good], 1) == one_at_a_time([good], 1) != "bad_entry"


def columns(leaves: list[bytes], first: int) -> list[tuple[str, Any]] | str:
    try:
        ids, records = declared_columns(leaves, first)
    except VerificationError as exc:
        return exc.reason
    return list(zip(ids, records, strict=True))


def test_entry_that_ends_inside_the_next_is_refused() -> None:
    """The two entries' bytes, one byte moved from the end of the first to the start of the
    second: their concatenation is that of two good entries, decoded as such by the run's one
    Unpacker, but neither entry is one on its own."""
    good = [entry(0, {"a": 1}), entry(1, {"a": 2})]
    moved = [good[0][:-1], good[0][-1:] + good[1]]
    assert b"".join(moved) == b"".join(good)
    assert batch(good, 0) == columns(good, 0) == one_at_a_time(good, 0) != "bad_entry"
    assert batch(moved, 0) == columns(moved, 0) == one_at_a_time(moved, 0) == "bad_entry"


def test_columns_of_a_chunk_are_its_records() -> None:
    leaves = [encode_declared_entry(n, SALT, Item(id=f"P-{n}", data=record)) for n, record in
              enumerate([{"category": "pow", "roster_record": "R-1"}, {"category": ""},
                         {"category": 5, "roster_record": ["R-2"]}, {}])]
    ids, records = declared_columns(leaves, 0)
    assert list(zip(ids, records, strict=True)) == one_at_a_time(leaves, 0)
    assert list(zip(*records_fields(records), strict=True)) == [
        record_fields(r) for r in records] == [("pow", "R-1"), (None, None), (None, None),
                                               (None, None)]
    assert records_fields(records[:1]) == (["pow"], ["R-1"])


def test_record_that_is_not_a_map_is_refused() -> None:
    leaf = msgpack.packb({"data": [1], "i": 0, "id": "P-1", "salt": SALT}, use_bin_type=True)
    assert batch([leaf], 0) == one_at_a_time([leaf], 0) == "bad_entry"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1),
                     st.text(max_size=4), st.binary(max_size=3), st.floats(width=32))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(records=st.lists(st.dictionaries(st.text(max_size=3), _values, max_size=4),
                        min_size=1, max_size=3),
       canonical=st.booleans(), flip=st.integers(0, 1 << 16))
def test_any_chunk_decodes_as_one_at_a_time(records: list[dict[str, Any]], canonical: bool,
                                            flip: int) -> None:
    """Records of every type, packed canonically or as they come, one byte maybe changed:
    the two decoders agree on each chunk."""
    leaves = []
    for n, record in enumerate(records):
        try:
            leaves.append(encode_declared_entry(n, SALT, Item(id=f"P-{n}", data=record))
                          if canonical else entry(n, record))
        except (codec.DecodeError, InputError):  # a float, a record with an "id" field
            leaves.append(entry(n, record))
    if flip & 1:
        k = (flip >> 1) % len(leaves)
        b = bytearray(leaves[k])
        b[(flip >> 4) % len(b)] ^= 1 + (flip >> 8) % 255
        leaves[k] = bytes(b)
    assert batch(leaves, 0) == columns(leaves, 0) == one_at_a_time(leaves, 0)


def ack_entry(index: int, **changes: Any) -> bytes:
    fields = {"evidence": None, "i": index, "id": f"P-{index}", "leaf": b"\x01" * 32,
              "reason": None, "salt": SALT, "status": "RECEIVED", **changes}
    return msgpack.packb(fields, use_bin_type=True)


def acks_one_at_a_time(leaves: list[bytes], first: int) -> list[Any] | str:
    try:
        return [(e.index, e.item_id, e.status, e.reason, e.evidence, e.leaf)
                for e in (decode_ack_entry(leaf, first + n) for n, leaf in enumerate(leaves))]
    except VerificationError as exc:
        return exc.reason


def acks_batch(leaves: list[bytes], first: int) -> list[Any] | str:
    """What the chunk decoders say: ``ack_records`` and the run decoder ``ack_columns``, which
    must agree on every run, good or bad."""
    said: list[list[Any] | str] = []
    for decode in (ack_records, lambda *run: list(zip(*ack_columns(*run), strict=True))):
        try:
            said.append(list(decode(leaves, first)))
        except VerificationError as exc:
            said.append(exc.reason)
    assert said[0] == said[1]
    return said[0]


def test_acknowledgement_entries_of_a_chunk_decode_as_one_at_a_time() -> None:
    leaves = [ack_entry(4), ack_entry(5, leaf=None, status="RECEIVED_UNDECLARED"),
              ack_entry(6, reason="seen", evidence="photo 6", status="DISPUTED")]
    assert acks_batch(leaves, 4) == acks_one_at_a_time(leaves, 4)
    assert acks_batch(leaves, 4)[2] == (6, "P-6", "DISPUTED", "seen", "photo 6", b"\x01" * 32)
    quick = _ack_run(leaves, 4)  # the run's quick path took them
    assert quick is not None and list(zip(*quick, strict=True)) == acks_batch(leaves, 4)


@pytest.mark.parametrize("changes", [
    {"status": "LOST"}, {"leaf": b"\x00" * 31}, {"leaf": "h" * 32}, {"reason": 5},
    {"evidence": "e" * 2001}, {"i": 1}, {"id": "bad id"}, {"salt": b"s"},
], ids=["unknown_status", "short_leaf", "leaf_str", "reason_int", "long_evidence",
        "wrong_index", "bad_id", "short_salt"])
def test_bad_acknowledgement_entry_in_a_chunk_is_refused(changes: dict[str, Any]) -> None:
    leaves = [ack_entry(0, **changes), ack_entry(1)]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


def test_acknowledgement_entry_that_runs_into_the_next_is_refused() -> None:
    # Concatenated, the run decodes to as many values; only the re-packing of each against
    # its own entry shows that the split between them is not the entries' own.
    a, b = ack_entry(0), ack_entry(1)
    leaves = [a[:-3], a[-3:] + b]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


def test_acknowledgement_entry_followed_by_a_second_value_is_refused() -> None:
    leaves = [ack_entry(0), ack_entry(1) + b"\xc0"]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


def test_acknowledgement_entry_holding_an_array_is_refused() -> None:
    leaves = [ack_entry(0), ack_entry(1, reason=["seen"])]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


@pytest.mark.parametrize("inside", [{}, {"seen": "photo"}, {"a": {"b": None}}],
                         ids=["empty_map", "map_of_text", "map_in_a_map"])
def test_acknowledgement_entry_holding_a_map_is_refused(inside: dict[str, Any]) -> None:
    # One map an entry is all the run decoder lets an entry build: a map inside a field is
    # one more than the run has entries, wherever in the run it is.
    for at in (0, 1, 2):
        leaves = [ack_entry(n, evidence=inside if n == at else None) for n in range(3)]
        assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


def test_acknowledgement_entries_one_short_of_a_map_each_are_refused() -> None:
    # As many maps as entries, but one entry is a bare value and another holds the spare map:
    # the count of maps alone would pass; each value must be an entry's own map.
    leaves = [ack_entry(0, reason={"k": "v"}), msgpack.packb("RECEIVED"), ack_entry(2)]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) == "bad_entry"


def test_acknowledgement_entries_with_text_at_the_limit_decode_as_one_at_a_time() -> None:
    leaves = [ack_entry(0, reason="r" * 2000, evidence="e" * 2000), ack_entry(1, leaf=None)]
    assert acks_batch(leaves, 0) == acks_one_at_a_time(leaves, 0) != "bad_entry"


def test_acknowledgement_entry_packed_with_a_longer_integer_is_refused() -> None:
    leaf = ack_entry(3).replace(b"\xa1i\x03", b"\xa1i\xd0\x03")  # 3 as an int 8
    assert acks_batch([leaf], 3) == acks_one_at_a_time([leaf], 3) == "bad_entry"


def answers() -> SignedHeader:
    alpha = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
    return sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                         created=1_800_000_000_000, meta={}, items=[Item(id="P-0", data={})],
                         salt_key=b"\x02" * 32).signed


def test_acknowledgement_of_all_items_makes_the_entries_one_at_a_time_makes() -> None:
    signed = answers()
    pairs = [(f"P-{n}", bytes([n]) * 32) for n in range(5)]
    streams = [AckStream(answers=signed, ack_id="A-1", created=1_800_000_000_001, count=5,
                         salt_key=b"\x03" * 32, chunk=4) for _ in range(2)]
    one = streams[0].add([(AckItem(id=i, status="WITHHELD", reason="r"), lh)
                          for i, lh in pairs[:2]])
    one += streams[0].add([(AckItem(id=i, status="WITHHELD", reason="r"), lh)
                           for i, lh in pairs[2:]])
    uniform = streams[1].add_uniform(pairs[:2], "WITHHELD", "r")
    uniform += streams[1].add_uniform(pairs[2:], "WITHHELD", "r")
    assert uniform == one
    assert streams[1].chunk_roots == streams[0].chunk_roots


@pytest.mark.parametrize(("pair", "status", "field"), [
    (("bad id", b"\x00" * 32), "RECEIVED", "id"), (("P-1", b"\x00" * 32), "LOST", "status"),
], ids=["bad_item_id", "unknown_status"])
def test_acknowledgement_of_all_items_refuses_what_an_item_would(
        pair: tuple[str, bytes], status: str, field: str) -> None:
    stream = AckStream(answers=answers(), ack_id="A-1", created=1_800_000_000_001, count=1,
                       salt_key=b"\x03" * 32, chunk=4)
    with pytest.raises(InputError) as exc:
        stream.add_uniform([pair], status, None)
    assert exc.value.field == field


def document_stream() -> DocumentStream:
    return DocumentStream(doc_type="manifest", doc_id="M-1", recipient="beta",
                          created=1_800_000_000_000, meta={}, count=3,
                          salt_key=b"\x04" * 32, chunk=2)


def test_records_streamed_without_items_make_the_items_entries() -> None:
    records = [(f"P-{n}", {"surname": "Avenor", "n": n, "seal_numbers": [f"S{n}"]})
               for n in range(3)]
    by_items, by_records = document_stream(), document_stream()
    assert by_records.add_records(records) == by_items.add(
        [Item(id=i, data=d) for i, d in records])
    assert by_records.chunk_roots == by_items.chunk_roots


@pytest.mark.parametrize(("record", "field"), [
    (("bad id", {}), "id"), (("P-1", {"id": "P-2"}), "data"), (("P-1", [1]), "data"),
    ((7, {}), "id"),
], ids=["bad_item_id", "record_with_an_id", "record_not_a_map", "id_not_text"])
def test_a_streamed_record_an_item_would_refuse_is_refused_so(
        record: tuple[Any, Any], field: str) -> None:
    with pytest.raises(InputError) as as_item:
        Item(id=record[0], data=record[1])
    with pytest.raises(InputError) as as_record:
        document_stream().add_records([record])
    assert as_record.value.field == as_item.value.field == field


def test_a_good_chunk_is_decoded_as_one_run_without_the_entry_by_entry_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick path really takes a chunk of good entries (nested records, integers, booleans):
    the loop it falls back to is never asked."""
    import bridge.core.entry_runs as runs

    def no_loop(*_: object) -> None:
        raise AssertionError("fell back to the loop")

    leaves = [encode_declared_entry(n, SALT, Item(id=f"P-{n}", data={
        "n": n, "ok": True, "nested": {"b": [None, {"c": -5}], "a": "x"}, "none": None}))
        for n in range(5)]
    monkeypatch.setattr(runs, "declared_records", no_loop)
    ids, records = declared_columns(leaves, 0)
    assert ids == [f"P-{n}" for n in range(5)]
    assert records[4] == {"n": 4, "ok": True, "nested": {"a": "x", "b": [None, {"c": -5}]},
                          "none": None}


@pytest.mark.parametrize("cuts", [[1, 10], [4, 4, 3], [11], [3, 1, 7]],
                         ids=["past_two_chunks", "on_chunk_edges", "whole", "uneven"])
def test_acknowledgement_of_all_items_in_batches_of_any_size_has_the_one_at_a_time_root(
        cuts: list[int]) -> None:
    """Batches that end inside a chunk, on its edge or past several: the same chunk roots
    and signed root as entries taken one at a time."""
    signed, me = answers(), PrivateIdentity.generate("beta", created=1_700_000_000_000)
    pairs = [(f"P-{n}", bytes([n]) * 32) for n in range(11)]
    streams = [AckStream(answers=signed, ack_id="A-1", created=1_800_000_000_001, count=11,
                         salt_key=b"\x03" * 32, chunk=4) for _ in range(2)]
    for pair in pairs:
        streams[0].add([(AckItem(id=pair[0], status="RECEIVED"), pair[1])])
    at = 0
    for cut in cuts:
        streams[1].add_uniform(pairs[at:at + cut], "RECEIVED", None)
        at += cut
    assert streams[1].chunk_roots == streams[0].chunk_roots
    assert len(streams[1].chunk_roots) == 2  # the third chunk closes when it is signed
    assert streams[1].finish(me).header.root == streams[0].finish(me).header.root


@pytest.mark.parametrize("reason", [None, "", "r" * 31, "r" * 32, "r" * 255, "r" * 256,
                                    "é ≠ e" * 400])
@pytest.mark.parametrize("status", sorted(ACK_STATUSES))
def test_entries_of_an_acknowledgement_of_all_items_are_the_one_at_a_time_bytes(
        status: str, reason: str | None) -> None:
    """The run's encoding from constant parts gives the canonical bytes ``encode_ack_entry``
    gives, whatever the lengths: every width of index (fixint to uint 64) and of id and
    reason text (fixstr, str 8, str 16), every status."""
    firsts = [0, 120, 250, 65530, 2**32 - 3, 2**40]
    ids = ["a", "P-" + "x" * 29, "P-" + "x" * 30, "P-" + "y" * 126, "ITEM-0000001"]
    salts = [bytes([k]) * 16 for k in range(len(ids))]
    items = [(item_id, bytes([k + 1]) * 32) for k, item_id in enumerate(ids)]
    try:
        AckItem(id="a", status=status, reason=reason)
    except InputError:  # a status that needs a reason: refused by both
        with pytest.raises(InputError):
            encode_ack_entries(0, salts, items, status, reason)
        return
    for first in firsts:
        want = [encode_ack_entry(first + k, salts[k], AckItem(id=i, status=status,
                                                              reason=reason), lh)
                for k, (i, lh) in enumerate(items)]
        assert encode_ack_entries(first, salts, items, status, reason) == want


def test_entries_with_a_hash_of_another_size_are_packed_as_the_map_is() -> None:
    # Not what the store holds (every leaf hash is 32 bytes), but never a wrong length byte.
    items = [("P-1", b"\x01" * 31), ("P-2", b"\x02" * 32)]
    want = [encode_ack_entry(k, SALT, AckItem(id=i, status="RECEIVED"), lh)
            for k, (i, lh) in enumerate(items)]
    assert encode_ack_entries(0, [SALT, SALT], items, "RECEIVED", None) == want
