"""The offline carrier's engine side between two real engines in one process
(``tests/harness``): a file's answers take the courier's path (``Delivery.answered``) and a
row finished by one transport is never finished twice by another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core import audit
from bridge.core.crypto.identity import PrivateIdentity


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def receipts_recorded(engine: wire.Engine) -> int:
    return len(engine.store.audit_bodies(audit.RECEIPT_RECEIVED))


def test_an_answer_brought_by_file_and_then_by_the_courier_is_recorded_once(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    pending = wire.next_pending(h.alpha.engine, "beta")
    assert pending is not None
    answer = wire.receive(h.beta.engine, pending.data)
    carried = h.alpha.engine.carry.answered("beta", pending.seq, pending.digest, answer.body)
    assert (carried.state, carried.changed) == ("delivered", True)
    assert wire.document(h.alpha.engine, "M-1")["state"] == "delivered"
    # The courier's try at the same row comes back late with the same answer.
    late = wire.deliver_answer(h.alpha.engine, pending, answer)
    assert late.state == "delivered"
    assert receipts_recorded(h.alpha.engine) == 1
    again = h.alpha.engine.carry.answered("beta", pending.seq, pending.digest, answer.body)
    assert (again.state, again.changed) == ("already", False)


def test_an_answer_whose_hint_names_another_envelope_marks_nothing(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    pending = wire.next_pending(h.alpha.engine, "beta")
    assert pending is not None
    answer = wire.receive(h.beta.engine, pending.data)
    wrong = h.alpha.engine.carry.answered("beta", pending.seq, b"\x00" * 32, answer.body)
    assert wrong.state == "failed" and "another hash" in wrong.detail
    nowhere = h.alpha.engine.carry.answered("beta", 99, pending.digest, answer.body)
    assert nowhere.state == "failed" and "no envelope 99" in nowhere.detail
    # An answer signed for envelope 1, filed under envelope 2: the signed answer decides.
    wire.submit(h.alpha.engine, "manifest", "beta", [person(2)], doc_id="M-2")
    second = h.alpha.engine.store.pending_row("beta", 2)
    assert second is not None
    forged = h.alpha.engine.carry.answered("beta", 2, second.digest, answer.body)
    assert forged.state == "failed"
    assert wire.document(h.alpha.engine, "M-1")["state"] != "delivered"
    assert receipts_recorded(h.alpha.engine) == 0


def test_an_export_takes_the_pending_rows_in_order_and_counts_an_attempt(h: Harness) -> None:
    for n in range(3):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
    rows = h.alpha.engine.carry.export_rows("beta", 0, 2)
    assert [r.seq for r in rows] == [1, 2]
    assert [r.seq for r in h.alpha.engine.carry.export_rows("beta", 2, 10)] == [3]
    assert [e.attempts for e in wire.outbox(h.alpha.engine, "beta")] == [1, 1, 1]
    assert wire.item(h.alpha.engine, "M-0", "P-00000")["status"] == "sent"
