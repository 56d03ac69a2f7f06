"""A hostile receiver: the peer (or whoever answers in its place) answers a real sender's
deliveries with what no honest receiver signs. For each answer the sender must refuse it with
a reason code, count it, keep its outbox as it was, and deliver correctly once an honest
answer comes. The two answers that once killed the delivery loop (a string where bytes or an
integer belong) are in ``test_harness_regressions.py``.

Answers are signed with the peer's real key unless the attack is the key: the worst case is a
compromised or buggy peer, or an on-path observer replaying what the peer once signed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, hostile, person, wire
from harness.checks import Honest, beta_says, one_delivered_one_pending, refused_then_delivered
from harness.wire import Answer, Pending

from bridge.core import codec
from bridge.core.crypto.identity import TAG_DOCUMENT, PrivateIdentity


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with one_delivered_one_pending(tmp_path, alpha, beta) as harness:
        yield harness


def test_answer_signed_by_a_key_that_is_not_the_peers(h: Harness,
                                                      mallory: PrivateIdentity) -> None:
    refused_then_delivered(h, lambda p, honest: hostile.signed(
        mallory, hostile.statement(h.beta.identity, p)), "bad_receipt")


def test_answer_naming_another_signing_key(h: Harness, mallory: PrivateIdentity) -> None:
    refused_then_delivered(h, beta_says(h, by_key=mallory.key_id), "bad_receipt")


def test_answer_signed_under_another_domain_tag(h: Harness) -> None:
    """A signature beta made as a document signature is no transport answer (domain
    separation, PROTOCOL.md §3)."""
    key = h.beta.identity

    def answer(p: Pending, honest: Honest) -> Answer:
        body = codec.encode(hostile.statement(key, p))
        return Answer(body=codec.encode({"r": body, "s": key.sign(TAG_DOCUMENT, body)}),
                      outcome="hostile")

    refused_then_delivered(h, answer, "bad_receipt")


def test_answer_for_another_seq(h: Harness) -> None:
    refused_then_delivered(h, beta_says(h, seq=1), "receipt_mismatch")


def test_answer_for_another_envelope_hash(h: Harness) -> None:
    refused_then_delivered(h, beta_says(h, envelope=bytes(range(32))), "receipt_mismatch")


def test_replayed_old_answer(h: Harness) -> None:
    """Beta's genuine receipt of seq 1, replayed to seq 2: bound to seq 1's hash."""
    old = wire.outbox(h.alpha.engine, "beta")[0].receipt
    assert old is not None
    refused_then_delivered(h, lambda p, honest: Answer(body=old, outcome="hostile"),
                           "receipt_mismatch")


def test_replayed_gap_rejection_of_another_envelope(h: Harness) -> None:
    """A genuine gap beta signed for another envelope, replayed: not a rewind here."""
    refused_then_delivered(h, beta_says(h, status=409, type="bridge.rejection",
                                        result="rejected", reason="gap", expected_seq=1,
                                        envelope=bytes(range(32))), "receipt_mismatch")


@pytest.mark.parametrize("expected", [2, 3, 2 ** 62], ids=["own-seq", "next-seq", "far-ahead"])
def test_gap_claim_that_asks_for_nothing_earlier(h: Harness, expected: int) -> None:
    refused_then_delivered(h, beta_says(h, status=409, type="bridge.rejection",
                                        result="rejected", reason="gap",
                                        expected_seq=expected), "bad_receipt")


@pytest.mark.parametrize("body", [b"", b"\x00garbage", b"\xff" * 64, codec.encode([1, 2]),
                                  codec.encode({"r": b"x", "s": b"y"})],
                         ids=["empty", "garbage", "0xff", "array", "unsigned-map"])
def test_garbage_bytes_for_an_answer(h: Harness, body: bytes) -> None:
    refused_then_delivered(h, lambda p, honest: Answer(body=body, outcome="hostile",
                                                       status=503), "bad_receipt")


@pytest.mark.parametrize("fields", [
    {"seq": True}, {"reason": ["gap"], "result": "rejected", "type": "bridge.rejection"},
    {"at": 2 ** 63}, {"result": "maybe"}, {"type": "bridge.rejection"},
    {"id": None}, {"v": 2}, {"extra": 1}],
    ids=["seq-as-bool", "reason-as-array", "at-past-63-bits", "unknown-result",
         "type-not-result", "receipt-without-id", "version-2", "extra-key"])
def test_well_signed_answer_with_a_malformed_field(h: Harness, fields: dict[str, object]
                                                   ) -> None:
    refused_then_delivered(h, beta_says(h, **fields), "bad_receipt")


def test_gap_claim_rewinding_past_delivered_envelopes(h: Harness) -> None:
    """Beta signed receipts for seq 1 and then claims, answering seq 3, that it expects 1.
    The sender rewinds as PROTOCOL.md §8.4 says (a receiver restored from a backup asks just
    that), and the re-sent envelopes change nothing: the honest receiver answers them as
    duplicates with the receipts it stored, nothing is applied twice."""
    wire.submit(h.alpha.engine, "manifest", "beta", [person(2)], doc_id="M-2")
    h.courier.step(h.alpha)  # seq 2 delivered
    receipts = [e.receipt for e in wire.outbox(h.alpha.engine, "beta")[:2]]
    trip = h.courier.step(h.alpha, answerer=beta_says(
        h, status=409, type="bridge.rejection", result="rejected", reason="gap", expected_seq=1))
    assert trip is not None and trip.seq == 3 and trip.outcome is not None
    assert (trip.outcome.state, trip.outcome.reason) == ("rewound", "gap")
    assert [e.state for e in wire.outbox(h.alpha.engine, "beta")] == ["pending"] * 3
    trips = h.courier.settle()
    assert [(t.seq, t.answer and t.answer.outcome) for t in trips] == [
        (1, "duplicate"), (2, "duplicate"), (3, "accepted")]
    assert [e.receipt for e in wire.outbox(h.alpha.engine, "beta")[:2]] == receipts
    assert [e.state for e in wire.outbox(h.alpha.engine, "beta")] == ["delivered"] * 3
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3]
    assert len(wire.events(h.beta.engine, "document_received")) == 3
    assert [d["state"] for d in wire.documents(h.alpha.engine)] == ["delivered"] * 3


def test_acknowledgement_with_a_change_the_lifecycle_forbids(h: Harness) -> None:
    """Beta acknowledges an item RECEIVED, then signs (bypassing its own checks) a change to
    NOT_RECEIVED, which the table does not allow: alpha refuses that acknowledgement's content
    with a signed refusal, records it with an alarm, and keeps the status it had."""
    h.courier.settle()
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    h.courier.settle()
    signed, leaves = wire.received_document(h.beta.engine, "M-1")
    forbidden = hostile.acknowledgement(h.beta.identity, signed, leaves,
                                        {"P-00001": "NOT_RECEIVED"}, ack_id="ACK-FORBIDDEN",
                                        created=h.clock.advance(seconds=1))
    for payload in hostile.chunk_payloads(forbidden, 4):
        wire.enqueue_raw(h.beta.engine, "chunk", payload)
    (trip,) = h.courier.settle()
    assert trip.outcome is not None and trip.answer is not None
    assert (trip.answer.outcome, trip.outcome.state) == ("refused", "refused")
    (refusal,) = wire.refusals(h.alpha.engine)
    assert (refusal["reason"], refusal["alarm"]) == ("transition_not_allowed", 1)
    assert wire.item(h.alpha.engine, "M-1", "P-00001")["status"] == "RECEIVED"
    assert [e["reason"] for e in wire.events(h.beta.engine, "security_alarm")] == [
        "transition_not_allowed"]
