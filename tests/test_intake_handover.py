"""A received document's first chunk: the row ``_new_inbound`` hands on is the one the store
holds (not read back after its insert), and an acknowledgement's first chunk is applied to the
document ``_new_inbound`` already read to check it (not read a second time). If the hand-over
ever drifted from the stored row (a column, the meta's JSON form), these say which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.intake import Intake


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:  # four items a chunk
        yield harness


def _handed_over(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any, Any]]:
    """(row handed on, the row the store holds at that moment, the answered target)."""
    seen: list[tuple[Any, Any, Any]] = []
    real = Intake._new_inbound

    def watched(self: Intake, peer: str, signed: Any, now: int) -> Any:
        row, target = real(self, peer, signed, now)
        stored = self.e.store.document_by_rowid(row.rowid)  # same transaction: sees it
        seen.append((row, stored, target))
        return row, target

    monkeypatch.setattr(Intake, "_new_inbound", watched)
    return seen


def test_the_new_rows_handed_over_are_the_stored_rows_column_for_column(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _handed_over(monkeypatch)
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(6)],
                doc_id="M-1", meta={"batch": "b-7", "note": "ünïcode", "n": [1, 2]})
    h.courier.settle()
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    h.courier.settle()
    assert len(seen) == 2  # one new row a document, not one a chunk (two chunks each)
    for row, stored, _ in seen:
        assert row == stored
    document, ack = seen[0], seen[1]
    assert document[2] is None
    target = ack[2]
    assert target is not None and target.rowid == ack[0].answers
    assert target.id == "M-1" and target.direction == "out"
    # And the acknowledgement was applied through it: every item, the document acknowledged.
    assert {i["status"] for i in wire.items(h.alpha.engine, "M-1")} == {"RECEIVED"}
    assert wire.document(h.alpha.engine, "M-1", "out")["state"] == "acknowledged"


def test_an_acknowledgement_s_first_chunk_reads_the_answered_document_once(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(3)],
                doc_id="M-2")
    h.courier.settle()
    store = h.alpha.engine.engine.store
    reads: list[int] = []
    real = store.document_by_rowid

    def counted(rowid: int) -> Any:
        reads.append(rowid)
        return real(rowid)

    monkeypatch.setattr(store, "document_by_rowid", counted)
    wire.acknowledge(h.beta.engine, "M-2", all="RECEIVED")
    trip = h.courier.step(h.beta)
    assert trip is not None and trip.outcome is not None and trip.outcome.progress
    target = wire.document(h.alpha.engine, "M-2", "out")
    assert target["state"] == "acknowledged"
    rowid = wire.sql(h.alpha.engine).execute(
        "SELECT rowid FROM documents WHERE id='M-2' AND direction='out'").fetchone()[0]
    assert rowid not in reads  # read once, by digest, to check the acknowledgement
