"""The receiver reads its inbox once for a new envelope (the link's last sequence number and
hash answer both "seen before?" and the link rules), and a byte-identical resend is still
answered with the stored receipt before it is opened. Counted with SQLite's trace callback,
in the in-process harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        yield harness


def _inbox_reads(h: Harness, data: bytes) -> tuple[str, list[str]]:
    reads: list[str] = []
    conn = wire.sql(h.beta.engine)
    conn.set_trace_callback(
        lambda s: reads.append(s) if s.startswith("SELECT") and "FROM inbox" in s else None)
    try:
        answer = wire.receive(h.beta.engine, data)
    finally:
        conn.set_trace_callback(None)
    return answer.outcome, reads


def test_a_new_envelope_reads_the_inbox_once_and_a_resend_gets_its_receipt(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    wire.submit(h.alpha.engine, "manifest", "beta", [person(2)], doc_id="M-2")
    first, second = wire.pending_batch(h.alpha.engine, "beta", 2)
    assert _inbox_reads(h, first.data) == ("accepted", [
        "SELECT seq, digest FROM inbox WHERE peer='alpha' ORDER BY seq DESC LIMIT 1"])
    outcome, reads = _inbox_reads(h, second.data)
    assert (outcome, len(reads)) == ("accepted", 1)
    # The same bytes again: the entry at its sequence number is read, and its receipt sent.
    outcome, reads = _inbox_reads(h, first.data)
    assert (outcome, len(reads)) == ("duplicate", 2)
    assert wire.inbox_receipt(h.beta.engine, "alpha", first.seq) is not None
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [first.seq, second.seq]
