"""Regression tests for two defects of the layout issue, each played by a hostile receiver in
the in-process harness.

1. **The delivery loop died silently.** A peer-signed transport answer whose ``envelope`` was
   a string, or a gap whose ``expected_seq`` was a string, raised ``TypeError`` in the answer's
   parsing or in the rewind; ``delivery_answer`` caught only ``PeerError``, so the exception
   left the engine and killed the delivery task: never sent again, nothing logged, health
   "ok". The answer must be refused with a reason code, and delivery go on.
2. **Time formatting was written three times**, two of them raising on times past year 9999.
   A time a peer signed must print, never raise, wherever peer times are shown: a document's
   and an acknowledgement's creation, an item's history, the reconciliation report in every
   form, receipts, refusals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import FakeClock, Harness, hostile, open_pair, person, wire
from harness.checks import beta_says, one_delivered_one_pending, refused_then_delivered

from bridge.core import documents
from bridge.core.crypto.identity import PrivateIdentity

# 10000-01-01T00:00:00.000Z: the first millisecond ISO 8601 cannot write with four digits.
YEAR_10000_MS = 253_402_300_800_000
# 9999-12-31T00:00:00.000Z: the last day inside every window (PROTOCOL.md §3 "Ranges").
LAST_DAY_MS = YEAR_10000_MS - 86_400_000


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with one_delivered_one_pending(tmp_path, alpha, beta) as harness:
        yield harness


# ---------------------------------------------------------------- 1. the delivery loop

def test_answer_with_envelope_as_a_string_is_refused_and_delivery_goes_on(h: Harness) -> None:
    refused_then_delivered(h, beta_says(h, envelope="not bytes"), "bad_receipt")


def test_gap_with_expected_seq_as_a_string_is_refused_and_delivery_goes_on(
        h: Harness) -> None:
    refused_then_delivered(h, beta_says(h, status=409, type="bridge.rejection",
                                        result="rejected", reason="gap", expected_seq="1"),
                           "bad_receipt")


def test_rejection_with_envelope_as_a_string_is_refused_and_delivery_goes_on(
        h: Harness) -> None:
    refused_then_delivered(h, beta_says(h, status=409, type="bridge.rejection",
                                        result="rejected", reason="gap", expected_seq=1,
                                        envelope="not bytes"), "bad_receipt")


# ---------------------------------------------------------------- 2. peer times

def every_view(engine: wire.Engine) -> list[Any]:
    """Everything a local caller can be shown about what the peer signed (none may raise)."""
    views: list[Any] = [wire.documents(engine), wire.acks(engine), wire.health(engine),
                        wire.refusals(engine), wire.rendered_reports(engine)]
    for doc in wire.documents(engine):
        views.append(wire.document(engine, doc["id"], doc["direction"]))
        for it in wire.items(engine, doc["id"], doc["direction"]):
            views.append(wire.item(engine, doc["id"], it["id"], doc["direction"]))
        if doc["direction"] == "out" and doc["state"] == "acknowledged":
            views.append(wire.receipt_summary(engine, doc["id"], None, "out"))
            views.append(wire.receipt_summary(engine, doc["id"], "P-00001", "out"))
    return views


def test_peer_times_past_year_9999_print_wherever_peer_times_are_shown(h: Harness) -> None:
    """Beta, bypassing its own checks, signs an acknowledgement of M-1 and a manifest for
    alpha, both created in year 10000. However alpha takes them, every view of alpha's
    prints (a manifest's creation is shown in the reconciliation report too)."""
    h.courier.settle()
    beta = h.beta.identity
    signed, leaves = wire.received_document(h.beta.engine, "M-1")
    ack = hostile.acknowledgement(beta, signed, leaves, {"P-00001": "RECEIVED"},
                                  ack_id="ACK-FAR", created=h.clock())
    manifest = documents.sign_document(
        beta, doc_type="manifest", doc_id="M-FAR", recipient="alpha", created=h.clock(),
        meta={}, items=[documents.Item(id="P-00009", data={"surname": "Testname"})],
        salt_key=bytes(32))
    for doc in (ack, manifest):
        far = hostile.resigned_header(beta, doc, created=YEAR_10000_MS)
        for payload in hostile.chunk_payloads(far, 4):
            wire.enqueue_raw(h.beta.engine, "chunk", payload)
    h.courier.settle()
    shown = json.dumps(every_view(h.alpha.engine))
    assert "+10000-01-01T00:00:00.000Z" in shown


def test_peer_times_in_year_9999_print_wherever_peer_times_are_shown(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """Both clocks on the last day of year 9999: everything is taken, and shown."""
    with open_pair(tmp_path, alpha, beta, clock=FakeClock(LAST_DAY_MS)) as h:
        wire.submit(h.alpha.engine, "manifest", "beta", [person(1), person(2)], doc_id="M-1",
                    meta={"deadline": "9999-12-31T12:00:00Z"})
        wire.submit(h.beta.engine, "roster", "alpha", [person(3)], doc_id="R-1")
        h.courier.settle()
        h.clock.advance(seconds=1)
        wire.acknowledge(h.beta.engine, "M-1", items=[
            {"id": "P-00001", "status": "PENDING_IDENTIFICATION"}])
        h.clock.advance(seconds=1)
        wire.acknowledge(h.beta.engine, "M-1", items=[
            {"id": "P-00001", "status": "IDENTITY_CONFIRMED"},
            {"id": "P-00002", "status": "RECEIVED"}])
        h.courier.settle()
        assert wire.document(h.alpha.engine, "M-1")["state"] == "acknowledged"
        assert wire.document(h.alpha.engine, "R-1", "in")["state"] == "received"
        for engine in (h.alpha.engine, h.beta.engine):
            shown = json.dumps(every_view(engine))
            assert "9999-12-31T00:00:00.000Z" in shown
            assert "9999-12-31T00:00:02.000Z" in shown
