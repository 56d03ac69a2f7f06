"""bridge.core.codec: the one canonical encoding. Every rule, and the reason code each breach gets.

Negative cases are hand-assembled MessagePack bytes (msgpack spec, "formats" section), named
after what an attacker or a sloppy peer would try.
"""

from __future__ import annotations

import contextlib
import random
import struct
import tracemalloc
from typing import Any

import msgpack
import pytest

from bridge.core import codec
from bridge.core.errors import BridgeError, DecodeError, PeerError


def reason_of(data: bytes, limits: codec.Limits = codec.DEFAULT_LIMITS) -> str:
    with pytest.raises(DecodeError) as exc:
        codec.decode(data, limits)
    return exc.value.reason


# ---------------------------------------------------------------- round trips


ROUND_TRIP_VALUES: list[Any] = [
    None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
    -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63),
    "", "a", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65536, "Ölçü – имя – 名前 – 🙂",
    b"", b"\x00", b"\xff" * 255, b"\xff" * 256, b"\x00" * 65536,
    [], [1], list(range(15)), list(range(16)), list(range(65536)),
    {}, {"a": 1}, {f"k{i:03d}": i for i in range(15)}, {f"k{i:03d}": i for i in range(16)},
    {"nested": {"list": [1, "two", b"three", None, True, {"deep": []}]}},
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES,
                         ids=lambda v: type(v).__name__ + str(len(repr(v))))
def test_round_trip(value: Any) -> None:
    data = codec.encode(value)
    assert codec.decode(data) == value
    # Rule 2: the canonical form is what msgpack-python emits for the sorted value.
    assert codec.encode(codec.decode(data)) == data


def test_encode_sorts_map_keys_by_utf8_bytes() -> None:
    value = {"b": 1, "a": 2, "é": 3, "z": 4, "aa": 5, "😀": 6, "\uffff": 7}
    data = codec.encode(value)
    keys = list(msgpack.unpackb(data, raw=False))
    assert keys == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert keys[:3] == ["a", "aa", "b"]  # shorter first on a tie
    assert codec.decode(data) == value


def test_encode_is_independent_of_insertion_order() -> None:
    a = {"x": {"q": 1, "p": 2}, "a": [{"z": 0, "y": 1}]}
    b = {"a": [{"y": 1, "z": 0}], "x": {"p": 2, "q": 1}}
    assert codec.encode(a) == codec.encode(b)


def test_tuples_bytearrays_and_memoryviews_encode_as_lists_and_bin() -> None:
    assert codec.encode((1, 2)) == codec.encode([1, 2])
    assert codec.encode(bytearray(b"ab")) == codec.encode(b"ab")
    assert codec.encode(memoryview(b"ab")) == codec.encode(b"ab")


def test_canonical_then_pack_canonical_equals_encode() -> None:
    value = {"b": [{"d": 1, "c": b"x"}], "a": "s"}
    assert codec.pack_canonical(codec.canonical(value)) == codec.encode(value)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = codec.encode({"a": 1})
    assert codec.decode(bytearray(data)) == {"a": 1}
    assert codec.decode(memoryview(data)) == {"a": 1}


# ---------------------------------------------------------------- encoding refusals


@pytest.mark.parametrize(("value", "reason"), [
    (1.5, "type"),
    ({"a": [0.0]}, "type"),
    ({1: "int key"}, "map_key"),
    ({b"bin": "bin key"}, "map_key"),
    ({"a": {("t",): 1}}, "map_key"),
    ({1, 2}, "type"),
    (object(), "type"),
    (2**64, "type"),
    (-(2**63) - 1, "type"),
    ("\ud800", "type"),  # a lone surrogate has no UTF-8 form
], ids=["float", "nested_float", "int_key", "bin_key", "tuple_key", "set", "object",
        "int_too_big", "int_too_small", "lone_surrogate"])
def test_encode_refuses(value: Any, reason: str) -> None:
    with pytest.raises(DecodeError) as exc:
        codec.encode(value)
    assert exc.value.reason == reason


def test_encode_refuses_absurd_nesting() -> None:
    value: Any = 1
    for _ in range(100):
        value = [value]
    with pytest.raises(DecodeError) as exc:
        codec.encode(value)
    assert exc.value.reason == "too_deep"


# ---------------------------------------------------------------- rule 3: map keys


def test_unsorted_map_keys_refused() -> None:
    assert reason_of(b"\x82\xa1b\x01\xa1a\x02") == "not_canonical"  # {"b": 1, "a": 2}


def test_map_keys_sorted_by_code_point_not_bytes_is_the_same_order() -> None:
    # "é" (U+00E9, C3 A9) after "z" (7A): both orders agree, so this is canonical.
    assert codec.decode(b"\x82\xa1z\x01\xa2\xc3\xa9\x02") == {"z": 1, "é": 2}
    assert reason_of(b"\x82\xa2\xc3\xa9\x02\xa1z\x01") == "not_canonical"


def test_longer_key_before_its_prefix_refused() -> None:
    assert reason_of(b"\x82\xa2aa\x01\xa1a\x02") == "not_canonical"  # {"aa": 1, "a": 2}


def test_duplicate_map_keys_refused() -> None:
    # {"a": 1, "a": 2}: a naive decoder keeps the last and hashes differ from what was signed.
    assert reason_of(b"\x82\xa1a\x01\xa1a\x02") == "not_canonical"


def test_duplicate_map_keys_nested_refused() -> None:
    assert reason_of(b"\x81\xa1m\x82\xa1a\x01\xa1a\x01") == "not_canonical"


def test_int_map_key_refused() -> None:
    assert reason_of(b"\x81\x01\x01") == "map_key"  # {1: 1}


def test_bin_map_key_refused() -> None:
    assert reason_of(b"\x81\xc4\x01a\x01") == "map_key"  # {b"a": 1}


def test_nil_map_key_refused() -> None:
    assert reason_of(b"\x81\xc0\x01") == "map_key"  # {None: 1}


def test_array_map_key_refused() -> None:
    assert reason_of(b"\x81\x90\x01") in {"map_key", "malformed"}  # {[]: 1}


def test_non_str_key_nested_refused() -> None:
    assert reason_of(b"\x81\xa1a\x81\x01\x01") == "map_key"
    assert reason_of(b"\x81\xa1a\x81\xc4\x01a\x01") == "map_key"


# ---------------------------------------------------------------- rule 2: shortest forms


@pytest.mark.parametrize("data", [
    b"\xcc\x05",                      # uint8 5 (fixint 0x05 is shortest)
    b"\xcd\x00\x05",                  # uint16 5
    b"\xce\x00\x00\x00\x05",          # uint32 5
    b"\xcf" + b"\x00" * 7 + b"\x05",  # uint64 5
    b"\xcd\x00\xff",                  # uint16 255 (uint8 is shortest)
    b"\xd0\x05",                      # int8 +5
    b"\xd0\xff",                      # int8 -1 (negative fixint is shortest)
    b"\xd1\xff\xff",                  # int16 -1
    b"\xd2\xff\xff\xff\xff",          # int32 -1
    b"\xd3" + b"\xff" * 8,            # int64 -1
    b"\xd1\xff\x80",                  # int16 -128 (int8 is shortest)
    b"\xd1\x00\x80",                  # int16 +128 (uint8 is shortest)
    b"\xd3\x00\x00\x00\x00\xff\xff\xff\xff",  # int64 2**32-1 (uint32 is shortest)
], ids=["uint8_small", "uint16_small", "uint32_small", "uint64_small", "uint16_for_uint8",
        "int8_positive", "int8_minus1", "int16_minus1", "int32_minus1", "int64_minus1",
        "int16_for_int8", "int16_positive", "int64_positive"])
def test_non_shortest_int_refused(data: bytes) -> None:
    assert reason_of(data) == "not_canonical"


@pytest.mark.parametrize("data", [
    b"\xd9\x01a",                     # str8 "a" (fixstr is shortest)
    b"\xda\x00\x01a",                 # str16 "a"
    b"\xdb\x00\x00\x00\x01a",         # str32 "a"
    b"\xda\x00\x20" + b"x" * 32,      # str16 of 32 (str8 is shortest)
    b"\xc5\x00\x01a",                 # bin16 b"a" (bin8 is shortest)
    b"\xc6\x00\x00\x00\x01a",         # bin32 b"a"
    b"\xdc\x00\x01\x01",              # array16 [1] (fixarray is shortest)
    b"\xdd\x00\x00\x00\x01\x01",      # array32 [1]
    b"\xdc\x00\x00",                  # array16 []
    b"\xde\x00\x01\xa1a\x01",         # map16 {"a": 1} (fixmap is shortest)
    b"\xdf\x00\x00\x00\x01\xa1a\x01",  # map32 {"a": 1}
    b"\xde\x00\x00",                  # map16 {}
], ids=["str8", "str16", "str32", "str16_for_str8", "bin16", "bin32", "array16", "array32",
        "array16_empty", "map16", "map32", "map16_empty"])
def test_non_shortest_length_refused(data: bytes) -> None:
    assert reason_of(data) == "not_canonical"


# ---------------------------------------------------------------- rule 1: types


@pytest.mark.parametrize("data", [
    b"\xca" + struct.pack(">f", 1.5),
    b"\xcb" + struct.pack(">d", 1.5),
    b"\xcb" + struct.pack(">d", 1.0),  # integral float: still a float
    b"\xca" + struct.pack(">f", float("nan")),
    b"\x81\xa1a\xcb" + struct.pack(">d", 0.1),
    b"\x92\x01\xca" + struct.pack(">f", -0.0),
    b"\x91" * 10 + b"\xcb" + struct.pack(">d", 2.5),
], ids=["float32", "float64", "float64_integral", "float32_nan", "float_in_map",
        "float_in_array", "float_deep"])
def test_floats_refused(data: bytes) -> None:
    assert reason_of(data) == "float"


@pytest.mark.parametrize("data", [
    b"\xd4\x01\x00",                       # fixext1
    b"\xd5\x01\x00\x00",                   # fixext2
    b"\xd8\x01" + b"\x00" * 16,            # fixext16
    b"\xc7\x01\x05\x00",                   # ext8
    b"\xc8\x00\x01\x05\x00",               # ext16
    b"\xc9\x00\x00\x00\x01\x05\x00",       # ext32
    b"\xd6\xff\x00\x00\x00\x01",           # timestamp32 (ext -1)
    b"\xd7\xff" + b"\x00" * 8,             # timestamp64
    b"\x81\xa1t\xd6\xff\x00\x00\x00\x01",  # timestamp in a map
], ids=["fixext1", "fixext2", "fixext16", "ext8", "ext16", "ext32", "timestamp32",
        "timestamp64", "timestamp_in_map"])
def test_ext_types_refused(data: bytes) -> None:
    assert reason_of(data) == "ext"


def test_never_used_byte_refused() -> None:
    assert reason_of(b"\xc1") == "malformed"


def test_text_sent_as_bin_stays_bytes() -> None:
    """Rule 4: str and bin are different values; a bin never decodes as text, nor the reverse,
    so a peer that sends a name as bin does not pass a check that wants str."""
    assert codec.decode(b"\xc4\x01a") == b"a"
    assert codec.decode(b"\xa1a") == "a"
    assert codec.encode("a") != codec.encode(b"a")
    assert codec.decode(codec.encode({"k": b"v"})) != codec.decode(codec.encode({"k": "v"}))


# ---------------------------------------------------------------- framing


def test_trailing_bytes_refused() -> None:
    assert reason_of(b"\x01\x02") == "trailing"


def test_second_value_appended_refused() -> None:
    assert reason_of(codec.encode({"a": 1}) + codec.encode({"b": 2})) == "trailing"


def test_empty_input_refused() -> None:
    assert reason_of(b"") == "truncated"


@pytest.mark.parametrize("data", [
    b"\x92\x01",              # array of 2 with 1 element
    b"\xa5ab",                # fixstr of 5 with 2 bytes
    b"\xc4\x05ab",            # bin8 of 5 with 2 bytes
    b"\x81\xa1a",             # map value missing
    b"\xcd\x01",              # uint16 missing a byte
    b"\xd9",                  # str8 missing its length
], ids=["array", "str", "bin", "map_value", "uint16", "str8_length"])
def test_truncated_input_refused(data: bytes) -> None:
    assert reason_of(data) == "truncated"


def test_every_prefix_of_a_valid_encoding_is_refused() -> None:
    data = codec.encode({"id": "P-1", "n": [1, 2, 300, -5], "b": b"\x00" * 20, "s": "Ünïcode"})
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:cut])


def test_decode_refuses_non_bytes() -> None:
    with pytest.raises(DecodeError) as exc:
        codec.decode("not bytes")  # type: ignore[arg-type]
    assert exc.value.reason == "type"


# ---------------------------------------------------------------- UTF-8


@pytest.mark.parametrize("data", [
    b"\xa2\xc3\x28",          # invalid continuation
    b"\xa1\xff",              # 0xFF never appears in UTF-8
    b"\xa2\xc0\xaf",          # overlong "/"
    b"\xa3\xed\xa0\x80",      # UTF-16 surrogate encoded in UTF-8
    b"\xa1\x80",              # lone continuation byte
    b"\x81\xa2\xc3\x28\x01",  # invalid UTF-8 in a map key
], ids=["bad_continuation", "byte_ff", "overlong", "surrogate", "lone_continuation", "in_key"])
def test_invalid_utf8_refused(data: bytes) -> None:
    assert reason_of(data) == "utf8"


# ---------------------------------------------------------------- limits


def test_depth_bomb_refused_without_recursion() -> None:
    # 100,000 nested one-element arrays: must fail cleanly, not exhaust the stack.
    assert reason_of(b"\x91" * 100_000 + b"\xc0") == "too_deep"


def test_map_depth_bomb_refused() -> None:
    assert reason_of(b"\x81\xa1a" * 50 + b"\x01") == "too_deep"


@pytest.mark.parametrize("leaf", [b"\x01", b"\xc0", b"\xc3", b"\xa1a", b"\xc4\x01a"],
                         ids=["int", "nil", "bool", "str", "bin"])
def test_depth_limit_is_the_same_whatever_the_innermost_scalar(leaf: bytes) -> None:
    """Whether a value is within max_depth must not depend on the type of its innermost
    scalar: two implementations of PROTOCOL.md would otherwise disagree on what is valid."""
    limits = codec.Limits(max_depth=4)
    ok = b"\x91" * 5 + leaf   # containers at depths 0..4
    bad = b"\x91" * 6 + leaf  # a container at depth 5
    assert codec.decode(ok, limits) is not None
    assert reason_of(bad, limits) == "too_deep"


def test_max_bytes_enforced_before_parsing() -> None:
    limits = codec.Limits(max_bytes=100)
    assert reason_of(codec.encode(b"x" * 200), limits) == "too_large"
    assert reason_of(b"\xc1" * 101, limits) == "too_large"  # size first, content never read


@pytest.mark.parametrize(("data", "limits"), [
    (msgpack.packb("a" * 20), codec.Limits(max_str=10)),
    (msgpack.packb(b"a" * 20, use_bin_type=True), codec.Limits(max_bin=10)),
    (msgpack.packb([1, 2, 3, 4]), codec.Limits(max_items=3)),
    (msgpack.packb({"a": 1, "b": 2, "c": 3, "d": 4}), codec.Limits(max_items=3)),
    (msgpack.packb({"a": ["x" * 20]}), codec.Limits(max_str=10)),
], ids=["str", "bin", "array", "map", "nested_str"])
def test_lengths_over_limits_refused(data: bytes, limits: codec.Limits) -> None:
    assert reason_of(data, limits) == "too_large"


@pytest.mark.parametrize("data", [
    b"\xdd\xff\xff\xff\xff",  # array32 declaring 4,294,967,295 elements
    b"\xdf\xff\xff\xff\xff",  # map32 declaring 4,294,967,295 pairs
    b"\xdd\x00\x10\x00\x00" + b"\xc0" * 16,  # array32 of 1,048,576 with 16 present
], ids=["array32_max", "map32_max", "array32_over_items"])
def test_huge_declared_container_length_refused_before_allocating(data: bytes) -> None:
    assert reason_of(data) == "too_large"


@pytest.mark.parametrize("data", [
    b"\xdb\xff\xff\xff\xff" + b"a" * 64,  # str32 declaring 4 GiB
    b"\xc6\xff\xff\xff\xff" + b"a" * 64,  # bin32 declaring 4 GiB
], ids=["str32_max", "bin32_max"])
def test_huge_declared_byte_length_refused(data: bytes) -> None:
    # The input holds far fewer bytes than declared, so it is refused as truncated or as over
    # the limit: either way without allocating the declared size.
    assert reason_of(data, codec.Limits(max_str=16, max_bin=16)) in {"too_large", "truncated"}


def test_small_limits_are_smaller() -> None:
    assert codec.SMALL_LIMITS.max_bytes < codec.DEFAULT_LIMITS.max_bytes
    assert reason_of(codec.encode(b"x" * 70_000), codec.SMALL_LIMITS) == "too_large"


@pytest.mark.parametrize("name", ["max_bytes", "max_depth", "max_items", "max_str", "max_bin"])
def test_limits_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        codec.Limits(**{name: 0})


def test_decode_errors_are_peer_errors() -> None:
    """Bytes from outside are the peer's fault: callers catch one family."""
    with pytest.raises(PeerError):
        codec.decode(b"\xc1")
    assert issubclass(DecodeError, BridgeError)


# ---------------------------------------------------------------- bounded work (§2.4)

def _peak_while(fn: Any) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(DecodeError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("unit", [b"\x90", b"\x80", b"\x05", b"\xe5", b"\xa2ab", b"\xc4\x02ab",
                                  b"\xcd\x01\x00"],
                         ids=["empty_arrays", "empty_maps", "fixints", "negative_fixints",
                              "short_strs", "short_bins", "uint16s"])
def test_width_bomb_is_refused_within_its_memory_budget(unit: bytes) -> None:
    """Arrays of 2 to 4 MiB of tiny values: the C decoder built ~80 bytes per input byte
    before any check. Now the objects built are counted as they are built. Input and base
    budget are an eighth of a 16 MiB bomb's with a 1 MiB budget: the peak takes the same share
    of the bound, for an eighth of the work (each block keeps the array 32 form, which
    needs 65,536 elements or more)."""
    per = max(1 << 16, (1 << 17) // len(unit))
    block = b"\xdd" + struct.pack(">I", per) + unit * per
    data = b"\xdc" + struct.pack(">H", 16) + block * 16
    limits = codec.Limits(max_expansion=1, base_budget=1 << 17)
    tracemalloc.start()  # one decoding gives both the reason and the peak
    try:
        assert reason_of(data, limits) == "too_large"
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The budget (1 x the input + base_budget), and the copy of the input itself.
    assert peak <= 2 * len(data) + 4 * limits.base_budget, (peak, len(data))


def test_a_declared_count_beyond_the_bytes_left_builds_nothing() -> None:
    data = b"\xdd\x00\x0f\x42\x40" + b"\x90" * 10
    assert reason_of(data) == "truncated"
    assert _peak_while(lambda: codec.decode(data)) < 1 << 20


def test_both_decoders_accept_and_refuse_the_same_inputs() -> None:
    """msgpack's C decoder (small inputs) and the strict reader (large ones, and the reason of
    every refusal) on mutations of valid encodings: the same verdict and the same value."""
    rng = random.Random(8)
    seeds = [codec.encode(v) for v in (
        {"a": [1, 2, {"b": b"xx"}], "c": "é", "d": -200, "e": 2**40, "f": None, "g": True},
        [[], [[]], {}], {f"k{i}": i * 1000 for i in range(20)},
        [-33, -129, -32769, -(2**31) - 1, 255, 65536, 2**64 - 1, -(2**63)])]
    tight = codec.Limits(max_depth=1, max_items=4, max_str=2, max_bin=2)
    for _ in range(20_000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.5 and at < len(data):
                data[at] = rng.randrange(256)
            else:
                data.insert(at, rng.randrange(256))
        for limits in (codec.DEFAULT_LIMITS, tight):
            reader = codec._Reader(bytes(data), limits)
            try:
                strict: Any = reader.value(0)
                if reader.pos != len(data):
                    strict = "refused"
            except DecodeError:
                strict = "refused"
            try:
                fast: Any = codec._fast_decode(bytes(data), limits)
            except Exception:
                fast = "refused"
            assert strict == fast, bytes(data).hex()


def test_wide_strings_count_their_memory() -> None:
    """One emoji makes CPython keep a str at 4 bytes per character: 1 MiB of input, 4 MiB of
    memory. The budget counts what the str really takes."""
    text = "\U0001f600" + "a" * (256 * 1024)
    data = codec.encode([text] * 16)
    limits = codec.Limits(max_expansion=1, base_budget=1 << 20)
    assert reason_of(data, limits) == "too_large"
    assert codec.decode(data) == [text] * 16
