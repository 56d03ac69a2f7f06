"""Acknowledgement entries made a run at a time (``entries.encode_ack_statements``, behind a
streamed listed acknowledgement): the very bytes ``encode_ack_entry`` makes of each
``AckItem``, and a statement an ``AckItem`` refuses refused the same, naming the same field."""

from __future__ import annotations

import pytest

from bridge.core.documents import AckItem, encode_ack_entry
from bridge.core.entries import MAX_TEXT, encode_ack_statements
from bridge.core.errors import InputError

STATEMENTS = [
    ("P-1", b"\x01" * 32, "RECEIVED", None, None),
    ("P-2", b"\x02" * 32, "DISPUTED", "seal broken", None),
    ("X-9", None, "RECEIVED_UNDECLARED", None, None),
    ("P-3", b"\x03" * 32, "IDENTITY_CONFIRMED", "", "dental record " * 40),
    ("P-4", b"\x04" * 32, "WITHHELD", "r" * MAX_TEXT, "é€😀"),
]


def test_a_run_of_statements_is_the_entries_made_one_ack_item_at_a_time() -> None:
    salts = [bytes([n]) * 16 for n in range(len(STATEMENTS))]
    want = [encode_ack_entry(7 + n, salts[n], AckItem(id=i, status=s, reason=r, evidence=e),
                             lh) for n, (i, lh, s, r, e) in enumerate(STATEMENTS)]
    assert encode_ack_statements(7, salts, STATEMENTS) == want


@pytest.mark.parametrize(("bad", "field"), [
    (("P-1\n", None, "RECEIVED", None, None), "id"),
    (("", None, "RECEIVED", None, None), "id"),
    (("P-1", None, "LOST", None, None), "status"),
    (("P-1", None, "RECEIVED", "r" * (MAX_TEXT + 1), None), "reason"),
    (("P-1", None, "RECEIVED", None, 5), "evidence"),
    (("P-1", b"\x01" * 31, "RECEIVED", None, None), "leaf"),
])
def test_a_statement_an_ack_item_refuses_is_refused_naming_its_field(
        bad: tuple[object, ...], field: str) -> None:
    rows = [STATEMENTS[0], bad]
    with pytest.raises(InputError) as err:
        encode_ack_statements(0, [b"\x00" * 16] * 2, rows)  # type: ignore[arg-type]
    assert err.value.field == field
