"""The sender's side of several envelopes in flight (PROTOCOL.md §8.7), in the in-process
harness: a gap that names an envelope of ours still on its way is no loss (nothing rewound,
the row stays pending, the attempt counted once, in the answer's transaction), while the same
gap with nothing in flight rewinds as before; an envelope decided meanwhile is not rewound by a
stale gap."""

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


def _three(h: Harness) -> list[wire.Pending]:
    for k in range(3):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(k)], doc_id=f"M-{k}")
    return wire.pending_batch(h.alpha.engine, "beta", 3)


def test_a_gap_naming_an_envelope_in_flight_is_overtaken_and_rewinds_nothing(
        h: Harness) -> None:
    first, second, third = _three(h)
    # 3 reached beta before 2 (another connection): beta answers gap, expecting 2.
    answer = wire.receive(h.beta.engine, third.data)
    outcome = h.alpha.engine.tried(third.row, answer.body, "HTTP 409", frozenset({1, 2}))
    assert outcome.state is DeliveryState.OVERTAKEN
    assert [(e.seq, e.state) for e in wire.outbox(h.alpha.engine, "beta")] == [
        (1, "pending"), (2, "pending"), (3, "pending")]
    assert [e.attempts for e in wire.outbox(h.alpha.engine, "beta")] == [0, 0, 1]
    for pending in (first, second, third):  # then in order: each accepted once
        answer = wire.receive(h.beta.engine, pending.data)
        assert h.alpha.engine.tried(pending.row, answer.body, "HTTP 200").state \
            is DeliveryState.DELIVERED
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2, 3]
    assert [e.attempts for e in wire.outbox(h.alpha.engine, "beta")] == [1, 1, 2]


def test_the_same_gap_with_nothing_in_flight_rewinds_as_before(h: Harness) -> None:
    first, _second, third = _three(h)
    answer = wire.receive(h.beta.engine, first.data)
    assert h.alpha.engine.tried(first.row, answer.body, "HTTP 200").state \
        is DeliveryState.DELIVERED
    gap = wire.receive(h.beta.engine, third.data)
    outcome = h.alpha.engine.tried(third.row, gap.body, "HTTP 409")
    assert outcome.state is DeliveryState.REWOUND
    assert [(e.seq, e.state) for e in wire.outbox(h.alpha.engine, "beta")] == [
        (1, "delivered"), (2, "pending"), (3, "pending")]
