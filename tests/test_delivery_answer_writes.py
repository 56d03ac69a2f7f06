"""An accepted answer ends its envelope in one write of the outbox row (the attempt that
brought it counted there) and its items go straight to "delivered" (never first "sent" in
the same transaction), with the same end state as before: the attempt counted once, the items
delivered, the envelope's bytes still readable. In the in-process harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.outcomes import DeliveryState


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def test_an_accepted_answer_counts_its_attempt_and_delivers_the_items_in_one_write(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1), person(2)], doc_id="M-1")
    pending = wire.next_pending(h.alpha.engine, "beta")
    assert pending is not None
    answer = wire.receive(h.beta.engine, pending.data)
    writes: list[str] = []
    conn = wire.sql(h.alpha.engine)
    conn.set_trace_callback(lambda s: writes.append(s) if s.startswith("UPDATE") else None)
    try:
        outcome = h.alpha.engine.tried(pending.row, answer.body, "HTTP 200")
    finally:
        conn.set_trace_callback(None)
    assert outcome.state is DeliveryState.DELIVERED
    assert [(e.state, e.attempts) for e in wire.outbox(h.alpha.engine, "beta")] == [
        ("delivered", 1)]
    assert {i["status"] for i in wire.items(h.alpha.engine, "M-1")} == {"delivered"}
    assert wire.envelope_bytes(h.alpha.engine, "beta", pending.seq) == pending.data
    assert len([w for w in writes if w.startswith("UPDATE outbox")]) == 1
    assert not [w for w in writes if "transport='sent'" in w]


def test_an_answer_for_an_envelope_finished_meanwhile_still_counts_the_attempt(
        h: Harness) -> None:
    """The carrier file's receipt came first: the courier's late answer records nothing
    twice, but its attempt is counted."""
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    pending = wire.next_pending(h.alpha.engine, "beta")
    assert pending is not None
    answer = wire.receive(h.beta.engine, pending.data)
    h.alpha.engine.carry.answered("beta", pending.seq, pending.digest, answer.body)
    late = h.alpha.engine.tried(pending.row, answer.body, "HTTP 200")
    assert late.state is DeliveryState.DELIVERED
    assert [(e.state, e.attempts) for e in wire.outbox(h.alpha.engine, "beta")] == [
        ("delivered", 1)]
