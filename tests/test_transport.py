"""Transport answers (PROTOCOL §8.3): strictly typed where they are parsed, and bound to the
envelope they answer. A peer's answer is data from outside however well it is signed: any
malformed one is a ``PeerError`` with a reason code, never a ``TypeError``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import answers as transport
from bridge.core import codec
from bridge.core.crypto.identity import TAG_TRANSPORT_RECEIPT, PrivateIdentity
from bridge.core.errors import PeerError

PEER = PrivateIdentity.generate("beta", created=1_767_225_600_000)
DIGEST, MSG_ID = bytes(range(32)), bytes(16)


def statement(**fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": "bridge.transport-receipt", "from": "alpha", "to": "beta",
            "by_key": PEER.key_id, "envelope": DIGEST, "id": MSG_ID, "seq": 3,
            "at": 1_767_225_600_000, "result": "accepted", "reason": None,
            "expected_seq": None} | fields


def signed(value: dict[str, Any]) -> bytes:
    body = codec.encode(value)
    return codec.encode({"r": body, "s": PEER.sign(TAG_TRANSPORT_RECEIPT, body)})


REJECTED = {"type": "bridge.rejection", "result": "rejected"}


@pytest.mark.parametrize("fields", [
    {"envelope": "not bytes"}, {"envelope": None}, {"envelope": bytes(31)},
    {"by_key": "k"}, {"id": 7}, {"seq": "3"}, {"seq": True}, {"seq": 0}, {"seq": 2 ** 63},
    {"at": -1}, {"at": 2 ** 63}, {"from": 1}, {"to": None}, {"to": "Beta!"},
    {"v": True}, {"result": 1}, {"result": "maybe"}, {"reason": "gap"},
    REJECTED | {"reason": ["gap"]}, REJECTED | {"reason": "Gap with spaces"},
    REJECTED | {"reason": "gap", "expected_seq": "1"},
    REJECTED | {"reason": "gap", "expected_seq": None},
    REJECTED | {"reason": "unauthenticated", "expected_seq": 1},
    {"result": "refused", "reason": "bad_chunk", "seq": None},
    {"type": "bridge.rejection"},
], ids=repr)
def test_malformed_signed_answer_is_a_peer_error_with_a_reason(fields: dict[str, Any]) -> None:
    with pytest.raises(PeerError) as info:
        transport.parse_answer(signed(statement(**fields)), PEER.public)
    assert info.value.reason == "bad_receipt"


_VALUES = st.one_of(st.none(), st.booleans(),
                    st.integers(min_value=-2 ** 63, max_value=2 ** 64 - 1),
                    st.text(max_size=8), st.binary(max_size=40),
                    st.lists(st.integers(min_value=0, max_value=9), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(statement())), _VALUES, max_size=4))
def test_any_signed_statement_parses_or_is_refused_with_a_reason(
        fields: dict[str, Any]) -> None:
    try:
        answer = transport.parse_answer(signed(statement(**fields)), PEER.public)
    except PeerError as exc:
        assert exc.reason == "bad_receipt"
        return
    # Parsed: every field is of its type, so acting on it cannot raise anything else.
    assert type(answer.envelope) is bytes and type(answer.at) is int
    try:
        transport.check_receipt_matches(answer, digest=DIGEST, seq=3, message_id=MSG_ID)
    except PeerError as exc:
        assert exc.reason in ("bad_receipt", "receipt_mismatch")


def test_rejection_captured_for_another_envelope_does_not_bind() -> None:
    """Every answer names its envelope's hash: a gap signed for one envelope, replayed to
    another, is a mismatch, not a request to rewind."""
    gap = transport.parse_answer(signed(statement(
        **REJECTED, reason="gap", expected_seq=1, envelope=bytes(32))), PEER.public)
    with pytest.raises(PeerError) as info:
        transport.check_receipt_matches(gap, digest=DIGEST, seq=3, message_id=MSG_ID)
    assert info.value.reason == "receipt_mismatch"


@pytest.mark.parametrize("expected", [3, 4])
def test_gap_at_or_above_the_envelopes_own_seq_is_malformed(expected: int) -> None:
    gap = transport.parse_answer(signed(statement(
        **REJECTED, reason="gap", expected_seq=expected)), PEER.public)
    with pytest.raises(PeerError) as info:
        transport.check_receipt_matches(gap, digest=DIGEST, seq=3, message_id=MSG_ID)
    assert info.value.reason == "bad_receipt"


def test_unauthenticated_rejection_binds_by_hash_alone() -> None:
    answer = transport.parse_answer(signed(statement(
        **REJECTED, reason="unavailable", **{"from": None, "id": None, "seq": None})),
        PEER.public)
    transport.check_receipt_matches(answer, digest=DIGEST, seq=3, message_id=MSG_ID)
    with pytest.raises(PeerError):
        transport.check_receipt_matches(answer, digest=bytes(32), seq=3, message_id=MSG_ID)
