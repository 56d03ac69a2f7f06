"""Times and counters from outside (bridge.core.times, PROTOCOL.md §3 "Ranges"): one formatter that
never raises, and the windows every parser applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import CREATED
from hypothesis import given
from hypothesis import strategies as st

from bridge.core import answers as transport
from bridge.core import codec, deadlines, times
from bridge.core.crypto.identity import TAG_TRANSPORT_RECEIPT, PrivateIdentity
from bridge.core.envelope import EnvelopeHeader
from bridge.core.errors import InputError, PeerError


@pytest.mark.parametrize(("ms", "text"), [
    (0, "1970-01-01T00:00:00.000Z"),
    (1_772_463_600_000, "2026-03-02T15:00:00.000Z"),
    (times.EARLIEST_MS, "2000-01-01T00:00:00.000Z"),
    (times.LATEST_MS, "9999-12-31T23:59:59.999Z"),
    (times.LATEST_MS + 1, "+10000-01-01T00:00:00.000Z"),
    (2**63 - 1, "+292278994-08-17T07:12:55.807Z"),  # the largest SQLite INTEGER
    (-1, "1969-12-31T23:59:59.999Z"),
    (-62_135_596_800_001, "0000-12-31T23:59:59.999Z"),  # ISO 8601 has a year 0
    (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
])
def test_far_future_peer_time_is_formatted_not_raised(ms: int, text: str) -> None:
    assert times.format_ms(ms) == text


@given(st.integers(min_value=-(2**80), max_value=2**80))
def test_formatting_any_integer_never_raises(ms: int) -> None:
    text = times.format_ms(ms)
    assert text.endswith("Z")
    if -62_135_596_800_000 <= ms <= times.LATEST_MS:  # where datetime can say it too
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        assert text == f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def test_a_stored_non_integer_time_is_shown_as_it_is() -> None:
    assert times.format_ms(True) == "True"
    assert times.format_optional(None) is None


@pytest.mark.parametrize("value", [True, 1.5, "1", None, times.EARLIEST_MS - 1,
                                   times.LATEST_MS + 1, 2**63, 2**64 - 1])
def test_time_outside_the_window_is_refused(value: object) -> None:
    assert times.check_time(value) is not None


def test_deadline_of_the_last_day_is_refused_not_overflowed() -> None:
    """``9999-12-31`` means the end of that day, the first instant of year 10000: outside the
    window. It raised OverflowError (a 500 on every read of the document)."""
    with pytest.raises(InputError) as info:
        deadlines.parse_deadline("9999-12-31")
    assert info.value.code == "bad_time" and info.value.field == "meta.ack_deadline"
    assert deadlines.deadline_of({"ack_deadline": "9999-12-31"}) is None


def test_deadline_with_a_minus_14_offset_is_counted_in_utc() -> None:
    """``-14:00`` moves the instant 14 hours later in UTC: late on 9999-12-31 that is year
    10000, refused; earlier it is an ordinary time, read exactly."""
    with pytest.raises(InputError) as info:
        deadlines.parse_deadline("9999-12-31T20:00:00-14:00")
    assert info.value.code == "bad_time"
    ms = deadlines.parse_deadline("2026-12-01T10:00:00-14:00")
    assert times.format_ms(ms) == "2026-12-02T00:00:00.000Z"


@pytest.mark.parametrize("text", ["2026-12-01T10:00:00-14:01", "2026-12-01T10:00:00+23:59"])
def test_deadline_with_an_offset_beyond_14_hours_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="-14:00 and \\+14:00"):
        deadlines.parse_deadline(text)


def test_deadline_beyond_the_horizon_of_its_document_is_refused() -> None:
    created = 1_772_463_600_000
    deadlines.check_meta({"ack_deadline": "2027-01-01"}, created)
    with pytest.raises(InputError, match="years after the document") as info:
        deadlines.check_meta({"ack_deadline": "2099-01-01"}, created)
    assert info.value.field == "meta.ack_deadline"


def test_deadline_in_milliseconds_is_exact() -> None:
    """Counted in integers: a float of a 13-digit count can be off by one millisecond."""
    assert deadlines.parse_deadline("2026-03-02T15:00:00.001+00:00") == 1_772_463_600_001


# ---------------------------------------------------------------- every parser applies them


def _header_map(alpha: PrivateIdentity, beta: PrivateIdentity, **fields: Any) -> bytes:
    header = EnvelopeHeader(sender="alpha", sender_key=alpha.key_id, recipient="beta",
                            recipient_key=beta.key_id, message_id=bytes(16), seq=1,
                            prev=bytes(32), sent_at=CREATED, kind="chunk")
    return codec.encode(header.to_map() | fields)


@pytest.mark.parametrize(("field", "value"), [
    ("seq", 0), ("seq", 2**63), ("seq", 2**64 - 1), ("seq", True),
    ("at", 1), ("at", 2**63), ("at", times.LATEST_MS + 1), ("at", True),
])
def test_envelope_header_integer_out_of_range_is_a_bad_header(
        alpha: PrivateIdentity, beta: PrivateIdentity, field: str, value: object) -> None:
    with pytest.raises(PeerError) as info:
        EnvelopeHeader.from_bytes(_header_map(alpha, beta, **{field: value}))
    assert info.value.reason == "bad_header"


def _answer(signer: PrivateIdentity, **fields: Any) -> bytes:
    statement = {"v": 1, "type": "bridge.rejection", "from": "alpha", "to": "beta",
                 "by_key": signer.key_id, "envelope": bytes(32), "id": bytes(16), "seq": 3,
                 "at": CREATED, "result": "rejected", "reason": "gap", "expected_seq": 2}
    r = codec.encode(statement | fields)
    return codec.encode({"r": r, "s": signer.sign(TAG_TRANSPORT_RECEIPT, r)})


def test_transport_answer_in_range_parses(beta: PrivateIdentity) -> None:
    assert transport.parse_answer(_answer(beta), beta.public).expected_seq == 2


@pytest.mark.parametrize(("field", "value"), [
    ("expected_seq", 0), ("expected_seq", -5), ("expected_seq", 2**63), ("expected_seq", True),
    ("seq", 0), ("seq", 2**64 - 1), ("at", 2**62), ("at", -1),
])
def test_signed_answer_with_a_sequence_number_or_time_out_of_range_is_refused(
        beta: PrivateIdentity, field: str, value: object) -> None:
    """An ``expected_seq`` of -5 rewound the whole outbox; one past 2**63 overflowed SQLite."""
    with pytest.raises(PeerError) as info:
        transport.parse_answer(_answer(beta, **{field: value}), beta.public)
    assert info.value.reason == "bad_receipt"


@pytest.mark.parametrize(("value", "where"), [
    ({"a": [1, {"b": b"\x00"}]}, "meta.a[1].b"),
    ({"a": 2**53}, "meta.a"),
    ({"a": -(2**53)}, "meta.a"),
    ({"a": 1.5}, "meta.a"),
])
def test_free_form_data_that_json_cannot_hold_is_named(value: object, where: str) -> None:
    from bridge.core.documents import json_data_problem

    problem = json_data_problem(value, "meta")
    assert problem is not None and problem[0] == where


def test_free_form_json_data_passes() -> None:
    from bridge.core.documents import json_data_problem

    assert json_data_problem({"a": [1, None, True, "x", {"b": 2**53 - 1}]}, "meta") is None
    assert json_data_problem({"a": (1, 2)}, "meta") is None  # a tuple is an array


def test_a_stored_entry_holding_a_bin_is_shown_as_hex_not_a_500() -> None:
    """A signed entry stored by Bridge 0.1.0 may hold a bin (intake refuses one now): it is
    sound (it is what was signed), so reads show it as JSON can hold it."""
    from bridge.engine.queries import shown as _shown

    assert _shown({"photo": b"\x89PNG", "tags": [b"\x00", "a", 1], "n": None}) == {
        "photo": "89504e47", "tags": ["00", "a", 1], "n": None}
