"""Passing one value of a file without decoding it (``pieces.Cursor.skip``): where it ends,
or why it cannot be passed, the same whether msgpack's C decoder passes it or the walk does,
and the work bounded by where the value is refused, not by the file's size."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc

import msgpack
import pytest

from bridge.core import codec, pieces
from bridge.core.errors import DecodeError

LIMITS = codec.DEFAULT_LIMITS
MIB = 1 << 20


class CountingReader(io.BytesIO):
    """Bytes in memory that count what was read of them."""

    read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        out = super().read(size)
        self.read_bytes += len(out)
        return out


def _skipped(data: bytes, *, walk_only: bool = False, limit: int | None = None,
             depth: int = 0) -> int | str:
    """Where ``skip`` leaves the cursor, or the reason it refuses."""
    c = pieces.Cursor(io.BytesIO(data), LIMITS)
    try:
        if walk_only:  # a header at a time: steps given, none handed to the C decoder
            assert c._walk(limit, depth, steps=1 << 62)
        else:
            c.skip(limit, depth)
    except DecodeError as exc:
        return exc.code
    return c.pos


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.randrange(-(1 << 40), 1 << 40)
    if kind == 1:
        return rng.randbytes(rng.choice([0, 3, 300, 70_000]))
    if kind == 2:
        return "x" * rng.choice([0, 5, 40, 300])
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return rng.randrange(128)
    if kind == 5:
        # One long array at the top at most: long ones nested would be billions of values.
        lengths = [0, 3, 20, 3000] if depth == 0 else [0, 3, 20]
        return [_random_value(rng, depth + 1) for _ in range(rng.choice(lengths))]
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.choice([0, 2, 17]))}


def test_the_c_decoder_and_the_walk_end_a_value_at_the_same_byte() -> None:
    rng = random.Random(14)
    for _ in range(60):
        data = msgpack.packb(_random_value(rng)) + b"\xc0"  # something after it
        assert _skipped(data) == _skipped(data, walk_only=True) == len(data) - 1


def test_a_value_of_a_million_tiny_elements_is_passed_whole() -> None:
    # The attack: a receipt whose one value is a million empty arrays, each of which
    # costs the walk a step. Passed by the C decoder, to the same byte.
    n = LIMITS.max_items
    data = b"\xdd" + struct.pack(">I", n) + b"\x90" * n + b"\x07"
    assert _skipped(data) == len(data) - 1


@pytest.mark.parametrize(("data", "reason"), [
    (b"\xdd" + struct.pack(">I", 5000) + b"\x90" * 4000, "truncated"),  # ends too soon
    (b"\xdd" + struct.pack(">I", 5000) + b"\x90" * 4000 + b"\xc1" * 1000, "malformed"),
    (b"\xdd" + struct.pack(">I", LIMITS.max_items + 1) + b"\x00" * 64, "too_large"),
    (b"\xdd" + struct.pack(">I", 5000) + b"\xc4\x01a" * 5000, "too_large"),  # over the limit
])
def test_a_long_value_the_c_decoder_cannot_pass_is_refused_with_the_walk_s_reason(
        data: bytes, reason: str) -> None:
    assert _skipped(data, limit=9000) == _skipped(data, walk_only=True, limit=9000) == reason


def test_a_deep_nesting_bomb_is_refused_at_its_depth_not_walked_to_its_end() -> None:
    # The attack: a file of 16 MiB of one-element arrays, each inside the one before. The
    # decoder refuses it five bytes in; a skip that does not count depth walked all of it.
    reader = CountingReader(b"\x91" * (16 * MIB) + b"\xc0")
    c = pieces.Cursor(reader, LIMITS)
    with pytest.raises(DecodeError) as caught:
        c.value()
    assert caught.value.code == "too_deep"
    assert reader.read_bytes <= 2 * pieces.BLOCK


def test_the_walk_refuses_nesting_at_the_byte_the_decoder_names() -> None:
    data = b"\x91" * (LIMITS.max_depth + 3) + b"\xc0"
    with pytest.raises(DecodeError) as decoded:
        codec.decode(data, LIMITS)
    c = pieces.Cursor(io.BytesIO(data), LIMITS)
    with pytest.raises(DecodeError) as skipped:
        c.skip()
    assert skipped.value.code == decoded.value.code == "too_deep"
    assert skipped.value.message == decoded.value.message


def test_nesting_counts_the_containers_above_the_value() -> None:
    data = b"\x91" * (LIMITS.max_depth + 1) + b"\xc0"  # depths 0 to max_depth
    assert _skipped(data) == len(data)
    assert _skipped(data, depth=1) == "too_deep"


def _faulty_long_values() -> list[tuple[bytes, int | None]]:
    """Values of many elements that the C decoder cannot pass, each for one fault placed deep
    inside (a byte that begins nothing, too many elements, a length past the end, the value
    over the span allowed, cut short), with the span allowed."""
    inner = b"\xdc" + struct.pack(">H", 3000) + b"\x00" * 3000  # 3,003 bytes
    faults = [b"\xc1", b"\xdd" + struct.pack(">I", LIMITS.max_items + 1),
              b"\xc6" + struct.pack(">I", 1 << 30), b"\x00"]
    out: list[tuple[bytes, int | None]] = []
    for n, fault in enumerate(faults):
        before = inner * (3 + 5 * n) + b"\xdc" + struct.pack(">H", 3000) + b"\x07" * (700 * n)
        data = b"\xdc" + struct.pack(">H", 40) + before + fault + b"\x00" * 4000
        out.append((data, len(before) if fault == b"\x00" else None))
    out.append((b"\xdc" + struct.pack(">H", 40) + inner * 39 + inner[:-1], None))  # cut short
    return out


@pytest.mark.parametrize(("data", "limit"), _faulty_long_values())
def test_a_fault_deep_in_a_long_value_is_named_as_the_walk_names_it(
        data: bytes, limit: int | None) -> None:
    c = pieces.Cursor(io.BytesIO(data), LIMITS)
    with pytest.raises(DecodeError) as skipped:
        c.skip(limit)
    c = pieces.Cursor(io.BytesIO(data), LIMITS)
    with pytest.raises(DecodeError) as walked:
        c._walk(limit, 0, steps=1 << 62)  # a header at a time
    assert (skipped.value.code, skipped.value.message) == (walked.value.code,
                                                           walked.value.message)


def test_naming_a_fault_at_the_end_of_a_long_value_walks_few_headers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The attack: a receipt of hundreds of megabytes of valid tiny elements, cut one byte
    # short. The C decoder cannot pass it; walking it a header at a time to say where it ends
    # cost minutes (18 MB: 30 s). Runs of elements go to the C decoder, halved where they fail.
    inner = b"\xdc" + struct.pack(">H", 60000) + b"\x00" * 60000
    data = b"\xdc" + struct.pack(">H", 300) + inner * 299
    walked = 0
    header = pieces.Cursor._walk_header

    def counted(self: pieces.Cursor) -> int | None:
        nonlocal walked
        walked += 1
        return header(self)

    monkeypatch.setattr(pieces.Cursor, "_walk_header", counted)
    reader = CountingReader(data)
    c = pieces.Cursor(reader, LIMITS)
    with pytest.raises(DecodeError) as caught:
        c.skip()
    assert (caught.value.code, caught.value.message) == (
        "truncated", f"input ends before the value does (at byte {len(data)})")
    assert walked < 10_000  # of 18 million headers
    assert reader.read_bytes < 64 * len(data)


def test_a_bin_longer_than_the_span_allowed_is_refused_not_raised_by_the_c_decoder() -> None:
    # msgpack's BufferFull (a bin longer than the decoder may hold) is no ValueError: it once
    # escaped the check as an exception of msgpack's own instead of a refusal.
    data = (b"\xdc" + struct.pack(">H", 4000) + b"\x00" * 3000
            + b"\xc6" + struct.pack(">I", 2 * MIB) + b"x" * (2 * MIB) + b"\x00" * 999)
    assert _skipped(data, limit=9000) == "too_large"


def test_a_long_bin_is_stepped_over_unread_not_held_by_the_c_decoder() -> None:
    # The attack: a file whose one skipped value holds a bin of 40 MiB, after enough tiny
    # elements that the C decoder passes the value. It would hold the bin whole to pass it.
    size = 40 * MIB
    data = (b"\xdc" + struct.pack(">H", 5000) + b"\x00" * 4999
            + b"\xc6" + struct.pack(">I", size) + b"x" * size + b"\xc0")
    reader = io.BytesIO(data)
    tracemalloc.start()
    try:
        c = pieces.Cursor(reader, LIMITS)
        c.skip()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert c.pos == len(data) - 1
    assert peak < 4 * pieces.HOLD_IN_C < size
