"""An envelope body, its header and a transport answer are decoded by the pure-Python strict
reader beside the event loop. Each has a fixed shape whose objects need a few hundred bytes,
so each is decoded within a fixed budget (PROTOCOL.md §2.4, §5.1, §8.3): a hostile body of
cheap values (nils, one-byte bins, one-letter strings, small integers: 8 bytes of budget each,
the least any value costs) is refused ``too_large`` after a bounded number of values, whatever
the body's size. Before, the outer map could walk some 8,000 values and the header, with the
SMALL budget, up to 64 KiB of them (60,000 nils, tens of milliseconds).

The work is counted in values read (calls of the reader's ``value``), not in time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge.core import answers, codec, envelope
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import PeerError

BODY = 60 * 1024  # a hostile body under the SMALL max_bytes, so only the budget refuses it
# Cheap values: each costs only its slot in the array holding it (CPython shares them).
CHEAP = {"nils": b"\xc0", "one_byte_bins": b"\xc4\x01a", "one_letter_strs": b"\xa1a",
         "minus_ones": b"\xff"}
# The most values each fixed budget lets the reader read (8 bytes of budget each at least).
OUTER_VALUES, HEADER_VALUES = 2 * 1024 // 8, 16 * 1024 // 8


def _array(elements: list[bytes]) -> bytes:
    n = len(elements)
    head = bytes([0x90 + n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    return head + b"".join(elements)


def _hostile(value: bytes, size: int) -> bytes:
    """Arrays of 15 cheap values in an array, about ``size`` bytes, and a last byte that
    no value begins: msgpack's C decoder refuses it, so the strict reader has to walk it."""
    inner = _array([value] * 15)
    return _array([inner] * (size // len(inner))) + b"\xc1"


@pytest.fixture
def values_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    count = [0]
    value = codec._Reader.value

    def counted(self: Any, depth: int) -> Any:
        count[0] += 1
        return value(self, depth)

    monkeypatch.setattr(codec._Reader, "value", counted)
    yield count


def _refused_after(decode: Callable[[], Any], count: list[int]) -> tuple[str | None, int]:
    with pytest.raises(PeerError) as exc:
        decode()
    return exc.value.reason, count[0]


@pytest.mark.parametrize("cheap", CHEAP.values(), ids=CHEAP.keys())
def test_hostile_body_is_refused_before_walking_more_than_its_fixed_budget(
        cheap: bytes, values_read: list[int]) -> None:
    body = _hostile(cheap, BODY)
    reason, read = _refused_after(lambda: envelope.parse(body), values_read)
    assert reason == "too_large"
    assert read <= OUTER_VALUES, read


@pytest.mark.parametrize("cheap", CHEAP.values(), ids=CHEAP.keys())
def test_hostile_header_is_refused_before_walking_more_than_its_fixed_budget(
        cheap: bytes, values_read: list[int]) -> None:
    body = codec.encode({"c": b"c" * 64, "h": _hostile(cheap, BODY), "s": b"s" * 64})
    reason, read = _refused_after(lambda: envelope.parse(body), values_read)
    assert reason == "too_large"
    assert read <= OUTER_VALUES + HEADER_VALUES, read


@pytest.mark.parametrize("cheap", CHEAP.values(), ids=CHEAP.keys())
def test_hostile_transport_answer_is_refused_before_walking_more_than_its_fixed_budget(
        cheap: bytes, values_read: list[int], alpha: PrivateIdentity) -> None:
    body = _hostile(cheap, BODY)
    reason, read = _refused_after(lambda: answers.parse_answer(body, alpha.public),
                                  values_read)
    assert reason == "bad_receipt"
    assert read <= OUTER_VALUES, read


def test_the_largest_header_and_answer_fit_their_budgets(alpha: PrivateIdentity) -> None:
    # The budgets are fixed: the largest legitimate values must decode within them.
    header = envelope.EnvelopeHeader(
        sender="a" * 63, sender_key=b"k" * 32, recipient="b" * 63, recipient_key=b"k" * 32,
        message_id=b"i" * 16, seq=2**62, prev=b"p" * 32, sent_at=2**42, kind="k" * 32)
    header_bytes = codec.encode(header.to_map())
    assert envelope.EnvelopeHeader.from_bytes(header_bytes) == header
    body = envelope.wire_bytes(header_bytes, b"c" * 1000, b"s" * 3373)
    assert envelope.parse(body)[0] == header
    answer = answers.TransportAnswer(
        sender="a" * 63, recipient="b" * 63, by_key=alpha.public.key_id, envelope=b"e" * 32,
        message_id=b"i" * 16, seq=2**62, at=2**42, result="refused", reason="equivocation",
        expected_seq=2**62)
    data = answers.sign_answer(alpha, answer)
    assert answers.parse_answer(data, alpha.public).expected_seq == 2**62
