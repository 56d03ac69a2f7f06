"""A gap answer that comes late (PROTOCOL.md §8.4, §8.7): with several envelopes in flight the
peer answers one of them "gap, expected 1" while envelope 1 is still on its way (or lost and
sent again); by the time that answer is read, the peer has decided envelope 1 and more, each
with a signed receipt signed after the gap. The gap is older than those decisions: only what
the peer has not decided since is sent again, never envelopes it holds (which would come back
as duplicates). A peer that really lost them (its store restored) signed its gap after its
decisions, and gets them all again."""

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


def _three_in_flight_first_lost(h: Harness) -> tuple[wire.Pending, wire.Answer]:
    """Envelopes 1-3 sent at once, 1 lost; the peer's gap answer to 2, held back."""
    for n in range(1, 4):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
    first, second, _ = wire.pending_batch(h.alpha.engine, "beta", 3)
    h.courier.carry(h.alpha, first, lose_envelope=True)
    late = h.courier.carry(h.alpha, second, lose_answer=True)
    assert late.answer is not None and late.answer.outcome == "rejected"
    return second, late.answer


def _states(h: Harness) -> list[tuple[int, str]]:
    return [(e.seq, e.state) for e in wire.outbox(h.alpha.engine, "beta")]


def test_late_gap_after_the_peer_decided_everything_rewinds_nothing(h: Harness) -> None:
    second, gap = _three_in_flight_first_lost(h)
    h.clock.advance(seconds=1)
    h.courier.settle()  # 1, 2 and 3 sent again and accepted
    assert _states(h) == [(1, "delivered"), (2, "delivered"), (3, "delivered")]
    outcome = wire.deliver_answer(h.alpha.engine, second, gap)
    assert outcome.state == "rewound"
    assert _states(h) == [(1, "delivered"), (2, "delivered"), (3, "delivered")]
    assert h.courier.settle() == []  # nothing resent, nothing answered as a duplicate


def test_late_gap_after_the_peer_decided_the_envelope_it_asked_for_resends_only_the_rest(
        h: Harness) -> None:
    second, gap = _three_in_flight_first_lost(h)
    h.clock.advance(seconds=1)
    h.courier.step(h.alpha)  # 1 sent again and accepted; 2 and 3 not yet
    assert _states(h) == [(1, "delivered"), (2, "pending"), (3, "pending")]
    wire.deliver_answer(h.alpha.engine, second, gap)
    assert _states(h) == [(1, "delivered"), (2, "pending"), (3, "pending")]
    trips = h.courier.settle()
    assert [(t.seq, t.answer.outcome if t.answer else None) for t in trips] == [
        (2, "accepted"), (3, "accepted")]


def test_gap_from_a_peer_that_lost_what_it_decided_resends_all_of_it(
        h: Harness, tmp_path: Path) -> None:
    copy = tmp_path / "beta-backup.db"
    wire.backup(h.beta.engine, copy)
    for n in range(1, 3):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
    h.courier.settle()
    h.clock.advance(seconds=1)
    h.beta.close()
    wire.restore(h.beta.home, copy)
    h.beta.restart()
    wire.submit(h.alpha.engine, "manifest", "beta", [person(3)], doc_id="M-3")
    trips = h.courier.settle()
    assert [(t.seq, t.answer.outcome if t.answer else None) for t in trips] == [
        (3, "rejected"), (1, "accepted"), (2, "accepted"), (3, "accepted")]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3]


def test_gap_from_a_restored_peer_whose_clock_is_behind_its_old_receipts_still_resends(
        h: Harness, tmp_path: Path) -> None:
    """Its gap is signed before the receipts it lost (by its clock): declined once as late,
    asked again, everything is resent; the link does not wait for the clock to catch up."""
    copy = tmp_path / "beta-backup.db"
    wire.backup(h.beta.engine, copy)
    for n in range(1, 3):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(n)], doc_id=f"M-{n}")
    h.courier.settle()
    h.beta.close()
    wire.restore(h.beta.home, copy)
    h.beta.restart()
    h.clock.advance(seconds=-3600)  # the restored host's clock is an hour behind
    wire.submit(h.alpha.engine, "manifest", "beta", [person(3)], doc_id="M-3")
    trips = h.courier.settle()
    assert [(t.seq, t.answer.outcome if t.answer else None) for t in trips] == [
        (3, "rejected"), (3, "rejected"), (1, "accepted"), (2, "accepted"), (3, "accepted")]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3]
