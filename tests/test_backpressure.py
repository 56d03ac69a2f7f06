"""The backpressure policy, sans I/O: when a peer's queue is full, and the Retry-After told to
the local caller, estimated from how fast the link drained lately (bridge/engine/backpressure.py).
The daemon's side (429, nothing stored) is tests/daemon/test_backpressure.py."""

from __future__ import annotations

import pytest

from bridge.core.errors import QueueFull
from bridge.engine.backpressure import (
    HORIZON_MS,
    MAX_RETRY_AFTER,
    DrainRate,
    Queue,
    QueuedBytes,
    refuse_if_full,
    retry_after,
)

T0 = 1_772_463_600_000


def _queue(envelopes: int, size: int = 0) -> Queue:
    return Queue(envelopes=envelopes, bytes=size, max_envelopes=100, max_bytes=1 << 20)


def test_a_queue_under_both_bounds_is_not_full_and_one_at_a_bound_is() -> None:
    assert not _queue(99, (1 << 20) - 1).full
    assert _queue(100).full and _queue(0, 1 << 20).full
    refuse_if_full(_queue(99), "beta", None, 30.0)  # nothing raised


def test_a_refusal_names_the_peer_the_bound_and_that_nothing_was_stored() -> None:
    with pytest.raises(QueueFull) as refused:
        refuse_if_full(_queue(100), "beta", None, 30.0)
    err = refused.value
    assert (err.code, err.field, err.retry_after) == ("queue_full", "to", 30)
    assert "beta" in err.detail and "100 envelopes" in err.detail
    assert "nothing was stored" in err.detail


def test_retry_after_is_the_time_the_link_takes_to_drain_below_the_bound() -> None:
    rate = DrainRate()
    for k in range(11):  # ten envelopes a second over the last second
        rate.delivered(T0 + 100 * k, 1000)
    measured = rate.per_second(T0 + 1000)
    assert measured is not None and measured[0] == pytest.approx(10.0)
    # 125 queued, bound 100: 26 to deliver before one more fits, at 10 a second.
    assert retry_after(_queue(125), measured, 30.0) == 3


def test_the_bytes_bound_can_be_the_longer_wait() -> None:
    queue = Queue(envelopes=1, bytes=10 << 20, max_envelopes=100, max_bytes=1 << 20)
    assert retry_after(queue, (10.0, 1 << 20), 30.0) == 10  # 9 MiB over, at 1 MiB a second


def test_a_link_that_delivered_nothing_lately_gets_the_longest_backoff() -> None:
    rate = DrainRate()
    for k in range(5):
        rate.delivered(T0 + k, 10)
    assert rate.per_second(T0 + HORIZON_MS + 10) is None  # the peer went away since
    assert retry_after(_queue(100), None, 30.0) == 30
    assert retry_after(_queue(100), None, 0.05) == 1  # never 0: whole seconds, at least one


def test_a_link_that_stopped_reads_as_slowing_down_not_as_fast_as_it_last_was() -> None:
    rate = DrainRate()
    for k in range(11):
        rate.delivered(T0 + 100 * k, 10)
    later = rate.per_second(T0 + 10_000)
    assert later is not None and later[0] == pytest.approx(1.0)


def test_an_estimate_is_bounded() -> None:
    assert retry_after(_queue(10_000), (0.001, 1.0), 30.0) == MAX_RETRY_AFTER


def test_a_queue_of_negative_size_is_refused_on_construction() -> None:
    with pytest.raises(ValueError, match="negative"):
        Queue(envelopes=-1, bytes=0, max_envelopes=1, max_bytes=1)


def test_the_waiting_bytes_are_read_again_once_their_figure_is_a_second_old() -> None:
    reads: list[int] = []

    def read(peer: str) -> int:
        reads.append(1)
        return 100 * len(reads)

    cached = QueuedBytes(max_age=1000)
    assert [cached.get("beta", T0 + dt, read) for dt in (0, 500, 999)] == [100, 100, 100]
    assert cached.get("beta", T0 + 1000, read) == 200  # a second old: read again
    assert cached.get("beta", T0 - 5, read) == 300  # the clock went back: read again
    assert cached.get("gamma", T0 - 5, read) == 400  # per peer
