"""A hostile peer's chunk whose entries are full of empty arrays or maps is well formed by the
byte rules, yet each input byte decodes to a Python object of 56 to 64 bytes and its slot: a
64 MiB chunk would take gigabytes. The entry decoders refuse such an entry (``bad_entry``,
PROTOCOL.md §6.4: at most one map or array per 4 bytes of the entry) before
the run is built, and their peak allocation stays proportional to the chunk's bytes.

The bound ``PEAK_PER_BYTE``: the entries themselves (already in memory when the decoders are
called, not counted), their concatenation (one byte a byte), and what an entry that passes the
rule can hold of maps and arrays (at most 72 bytes for each 4 bytes). Before
the rule the peak was about 70 bytes a byte."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from bridge.core import codec
from bridge.core.ack_runs import ack_columns
from bridge.core.entries import (
    AckItem,
    ack_records,
    declared_records,
    decode_declared_entry,
    encode_ack_entry,
    encode_declared_record,
)
from bridge.core.entry_runs import declared_columns
from bridge.core.errors import DecodeError, InputError, VerificationError
from bridge.core.streaming import DocumentStream
from bridge.engine.inbound import PAYLOAD_LIMITS

SALT = b"\x07" * 16
PEAK_PER_BYTE = 24
ENTRIES = 16  # about 1 MiB of entries: fast, and far above the constant costs


def _bomb_record(empty: Any) -> dict[str, Any]:
    """A record just under the entry size limit, made of nothing but empty containers (or
    one-byte negative integers)."""
    return {f"k{n:02}": [empty] * 4096 for n in range(15)}


def _declared_bombs(empty: Any) -> list[bytes]:
    # Packed as is (keys already in canonical order): canonical() of a million empty
    # containers would take longer than the test.
    record = _bomb_record(empty)
    leaves = [codec.pack_value({"data": record, "i": i, "id": f"item-{i}", "salt": SALT})
              for i in range(ENTRIES)]
    assert leaves[1] == encode_declared_record(1, SALT, "item-1", record)
    assert all(len(leaf) <= codec.SMALL_LIMITS.max_bytes for leaf in leaves)
    return leaves


def _peak(decode: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        try:
            decode()
        except VerificationError as exc:
            assert exc.reason == "bad_entry"
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("empty", [[], {}, -10, -1],
                         ids=["empty_arrays", "empty_maps", "minus_tens", "minus_ones"])
@pytest.mark.parametrize("decoder", [declared_columns, declared_records],
                         ids=["run", "loop"])
def test_chunk_of_empty_containers_decodes_within_a_bound_of_its_size(
        empty: Any, decoder: Callable[[list[bytes]], Any]) -> None:
    leaves = _declared_bombs(empty)
    size = sum(map(len, leaves))
    peak = _peak(lambda: decoder(leaves))
    assert peak <= PEAK_PER_BYTE * size, f"peak {peak / size:.1f} bytes per input byte"


@pytest.mark.parametrize("decoder", [declared_columns, declared_records], ids=["run", "loop"])
def test_entry_of_empty_arrays_is_refused_as_bad_entry(
        decoder: Callable[[list[bytes]], Any]) -> None:
    good = encode_declared_record(0, SALT, "item-0", {"name": "A", "tags": [["x"]]})
    bomb = encode_declared_record(1, SALT, "item-1", {"a": [[]] * 100})
    with pytest.raises(VerificationError, match="entry 1") as exc:
        decoder([good, bomb])
    assert exc.value.reason == "bad_entry"


@pytest.mark.parametrize("decoder", [declared_columns, declared_records], ids=["run", "loop"])
def test_entry_of_small_negative_integers_is_refused_before_the_chunk_is_built(
        decoder: Callable[[list[bytes]], Any]) -> None:
    # -32 .. -6 are one byte each and a new 28-byte int each (CPython shares -5 .. 256):
    # they count as maps and arrays do (PROTOCOL.md §6.4), in an array and in a flat map.
    good = encode_declared_record(0, SALT, "item-0", {"name": "A", "offset": -3})
    for bomb in ({"a": [-10] * 100}, {f"{n:c}": -10 for n in range(33, 127)}):
        bad = encode_declared_record(1, SALT, "item-1", bomb)
        with pytest.raises(VerificationError, match="entry 1") as exc:
            decoder([good, bad])
        assert exc.value.reason == "bad_entry"


def test_sender_refuses_a_record_of_negative_integers_naming_the_item() -> None:
    for bomb in ({"a": [-10] * 100}, {f"{n:c}": -10 for n in range(33, 127)}):
        stream = DocumentStream(doc_type="roster", doc_id="r-1", recipient="bob", created=0,
                                meta={}, count=1, salt_key=b"\x01" * 32, chunk=4)
        with pytest.raises(InputError) as exc:
            stream.add_records([("item-0", bomb)])
        assert exc.value.field == "items[0].data"


def test_records_with_a_few_negative_integers_are_accepted_by_every_decoder() -> None:
    # Text in Cyrillic and CJK is full of bytes that could begin a negative integer (d0, d1,
    # e3 ...): the run decoder counts the integers themselves then, and agrees with the loop.
    record = {"name": "Олена Коваленко", "place": "東京都", "offsets": [-3, -40, 7],
              "balance": -2**40, "notes": [{"delta": -1}]}
    leaves = [encode_declared_record(i, SALT, f"item-{i}", record) for i in range(3)]
    expected = [(f"item-{i}", record) for i in range(3)]
    assert declared_records(leaves) == expected
    assert declared_columns(leaves) == ([e[0] for e in expected], [e[1] for e in expected])


def test_sender_refuses_a_record_of_empty_arrays_naming_the_item() -> None:
    stream = DocumentStream(doc_type="roster", doc_id="r-1", recipient="bob", created=0,
                            meta={}, count=2, salt_key=b"\x01" * 32, chunk=4)
    stream.add_records([("item-0", {"name": "A", "tags": [["x"]]})])
    with pytest.raises(InputError) as exc:
        stream.add_records([("item-1", {"a": [[]] * 100})])
    assert exc.value.field == "items[1].data"


def test_nested_records_within_the_rule_are_accepted_by_every_decoder() -> None:
    # Small maps in an array (contacts, addresses): one container per few bytes of text.
    record = {"contacts": [{"kind": "home", "n": f"+1-555-{n:04}"} for n in range(20)],
              "tags": ["a", "b"], "meta": {}}
    leaves = [encode_declared_record(i, SALT, f"item-{i}", record) for i in range(3)]
    expected = [(f"item-{i}", record) for i in range(3)]
    assert declared_records(leaves) == expected
    assert declared_columns(leaves) == ([e[0] for e in expected], [e[1] for e in expected])
    assert decode_declared_entry(leaves[2], 2).data == record


# An array of 4,000 empty arrays, and a map of 4,000 keys (two letters each) of empty maps.
_ACK_BOMBS = {"empty_arrays": b"\xdc\x0f\xa0" + b"\x90" * 4000,
              "empty_maps": b"\xde\x0f\xa0" + b"".join(
                  b"\xa2" + bytes([48 + n // 64, 48 + n % 64]) + b"\x80" for n in range(4000))}


@pytest.mark.parametrize("bomb", list(_ACK_BOMBS.values()), ids=list(_ACK_BOMBS))
def test_ack_chunk_of_empty_containers_is_refused_within_a_bound_of_its_size(
        bomb: bytes) -> None:
    # An ack entry has no room for containers: the status is text. The run is given up at
    # its first array, or its first map past one an entry, so the peak is at most one
    # entry's decoding whatever the chunk's length.
    good = encode_ack_entry(0, SALT, AckItem(id="item-0", status="RECEIVED"), None)
    bomb = good.replace(b"\xa6status\xa8RECEIVED", b"\xa6status" + bomb)
    leaves = [good] + [bomb] * ENTRIES
    size = sum(map(len, leaves))
    for decode in (ack_records, ack_columns):
        peak = _peak(lambda: decode(leaves))
        assert peak <= PEAK_PER_BYTE * size, f"peak {peak / size:.1f} bytes per input byte"
        with pytest.raises(VerificationError) as exc:
            decode(leaves)
        assert exc.value.reason == "bad_entry"



@pytest.mark.parametrize("empty", [[], {}], ids=["empty_arrays", "empty_maps"])
def test_envelope_body_of_empty_containers_is_refused_within_its_budget(empty: Any) -> None:
    # The envelope, the chunk payload around the entries, the carrier's records and the
    # relay's and HTTP bodies are all decoded by codec.decode (PAYLOAD_LIMITS for a body):
    # its reader counts what it builds and refuses at ``budget_of`` the input's size.
    # The body's own limits with a smaller constant part of the budget (16 MiB of objects
    # traced one by one would make the test slow; the proportional part is the same).
    limits = dataclasses.replace(PAYLOAD_LIMITS, base_budget=2 * 1024 * 1024)
    body = codec.pack_value([[empty] * 4096] * 128)  # above the C decoder's size
    with pytest.raises(DecodeError) as exc:
        tracemalloc.start()
        try:
            codec.decode(body, limits)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert exc.value.reason == "too_large"
    assert peak <= codec.budget_of(len(body), limits) + 2 * len(body)


def _nested(leaf: bytes, size: int) -> bytes:
    """About ``size`` bytes of arrays of 15 ``leaf`` values, in one array: the worst shapes
    fit in small arrays (a flat array pays for all its slots at its header)."""
    inner = bytes([0x9F]) + leaf * 15
    n = size // len(inner)
    head = b"\xdc" + n.to_bytes(2, "big") if n <= 0xFFFF else b"\xdd" + n.to_bytes(4, "big")
    return head + inner * n


# Each decodes to far more objects than its size: many small strings, integers that are new
# objects, nested empty containers, many map keys, small bins, nils (a slot each).
_MAP_OF_KEYS = bytes([0x8F]) + b"".join(b"\xa2a" + bytes([97 + n]) + b"\xc0" for n in range(15))
PAYLOAD_BOMBS = {
    "two_letter_strs": _nested(b"\xa2ab", 1 << 19),
    "minus_tens": _nested(b"\xf6", 1 << 19),
    "ints_of_300": _nested(b"\xcd\x01\x2c", 1 << 19),
    "nested_empty_arrays": _nested(b"\x91\x90", 1 << 19),
    "empty_maps": _nested(b"\x80", 1 << 19),
    "maps_of_15_keys": _nested(_MAP_OF_KEYS, 1 << 19),
    "two_byte_bins": _nested(b"\xc4\x02ab", 1 << 19),
    "nils": _nested(b"\xc0", 1 << 19),
}


@pytest.mark.parametrize("body", PAYLOAD_BOMBS.values(), ids=PAYLOAD_BOMBS.keys())
def test_chunk_payload_bomb_is_refused_within_twice_its_size(body: bytes) -> None:
    # A chunk payload (PAYLOAD_LIMITS) may decode to at most 2 x its size + base_budget of
    # objects (PROTOCOL.md §2.4); what the reader builds is what it counts (its arrays made
    # at their size, never grown), and beyond the budget only str and bin contents copied
    # from the input (at most half of what it has read, for these shapes). Before, the
    # budget was 4 x the size: a 64 MiB payload could cost 272 MiB of objects.
    limits = dataclasses.replace(PAYLOAD_LIMITS, base_budget=256 * 1024)
    assert codec.budget_of(len(body), limits) == 2 * len(body) + limits.base_budget
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError) as exc:
            codec.decode(body, limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.value.reason == "too_large"
    size = len(body)
    assert peak <= 2 * size + limits.base_budget + size // 2, f"{peak / size:.2f} x"


@pytest.mark.parametrize("collector_on", [True, False], ids=["on", "paused_by_the_caller"])
@pytest.mark.parametrize("hostile", [False, True], ids=["good_run", "run_of_empty_arrays"])
def test_cycle_collector_is_as_it_was_after_a_run_decodes_or_is_refused(
        collector_on: bool, hostile: bool) -> None:
    """The run decoder pauses CPython's cycle collector while it builds the run's values (a
    tree: nothing of it is a cycle) and leaves it as it found it, whether the run decodes or
    a hostile entry gives the run up half way (``bad_entry``), and never resumes a pause that
    is not its own."""
    import gc

    good = encode_declared_record(0, SALT, "item-0", {"name": "A", "tags": ["x"]})
    leaves = [good, encode_declared_record(1, SALT, "item-1", {"a": [[]] * 100})] if hostile \
        else [good, encode_declared_record(1, SALT, "item-1", {"name": "B"})]
    was = gc.isenabled()
    try:
        if not collector_on:
            gc.disable()
        try:
            ids, _ = declared_columns(leaves)
        except VerificationError as exc:
            assert hostile and exc.reason == "bad_entry"
        else:
            assert not hostile and ids == ["item-0", "item-1"]
        assert gc.isenabled() is collector_on
    finally:
        if was:
            gc.enable()
