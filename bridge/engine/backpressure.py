"""Backpressure: a bound on what waits for one peer, and how long a refused caller should wait.

A local system can submit far faster than a link delivers (187 documents a second against 6 to
10 envelopes a second, measured): unbounded, the queue grows until the disk is full. So each
peer's queue is bounded (``[delivery]`` ``max_queued_envelopes`` and ``max_queued_bytes``): a
document or acknowledgement for a peer whose queue is at either bound is refused before
anything is signed or stored (``QueueFull``: the local API's 429 with ``Retry-After``). The
bound is checked against what already waits, so one document larger than the bound still goes
once the queue is empty, and a document is never half admitted.

``Retry-After`` comes from the link's recent drain rate (envelopes and bytes a second over its
last deliveries): the time until the queue is back under its bound. A link that delivered
nothing lately (the peer is down) gets the delivery loop's longest backoff: the earliest a
retry of it may be expected. Sans I/O: the clock is the engine's, in milliseconds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bridge.core.errors import QueueFull

RECENT = 64  # deliveries remembered per link
HORIZON_MS = 120_000  # older deliveries say nothing about the link now
MAX_RETRY_AFTER = 600  # seconds: an estimate past ten minutes is no estimate


@dataclass(frozen=True, kw_only=True)
class Queue:
    """What waits for one peer, and its bounds."""

    envelopes: int
    bytes: int
    max_envelopes: int
    max_bytes: int

    def __post_init__(self) -> None:
        if min(self.envelopes, self.bytes) < 0 or min(self.max_envelopes, self.max_bytes) < 1:
            raise ValueError("a queue holds no negative amounts and bounds are positive")

    @property
    def full(self) -> bool:
        return self.envelopes >= self.max_envelopes or self.bytes >= self.max_bytes

    def excess(self) -> tuple[int, int]:
        """(envelopes, bytes) to deliver before the queue is under both bounds."""
        return (max(0, self.envelopes - self.max_envelopes + 1),
                max(0, self.bytes - self.max_bytes + 1))


class DrainRate:
    """How fast one link's queue drains, from its last deliveries (time in ms, size)."""

    def __init__(self) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=RECENT)

    def delivered(self, at: int, size: int) -> None:
        self._seen.append((at, size))

    def per_second(self, now: int) -> tuple[float, float] | None:
        """(envelopes, bytes) a second lately, or None when too few deliveries are recent."""
        recent = [(t, n) for t, n in self._seen if now - t <= HORIZON_MS]
        if len(recent) < 2:
            return None
        # Over the span from the first recent delivery to now: a link that stopped since
        # its last delivery reads as slowing down, not as fast as it last was.
        span = max(now - recent[0][0], 1) / 1000
        return (len(recent) - 1) / span, sum(n for _, n in recent[1:]) / span


class Drains:
    """Every link's drain rate, by peer, and its waiting bytes as last read. Used from the
    database thread only."""

    def __init__(self) -> None:
        self._rates: dict[str, DrainRate] = {}
        self.queued_bytes = QueuedBytes()

    def delivered(self, peer: str, at: int, size: int) -> None:
        self._rates.setdefault(peer, DrainRate()).delivered(at, size)

    def rate(self, peer: str, now: int) -> tuple[float, float] | None:
        rate = self._rates.get(peer)
        return rate.per_second(now) if rate is not None else None


class QueuedBytes:
    """Each link's waiting bytes, read again at most every ``max_age`` ms: summing them walks
    every pending row (42 ms at 10,000 pending envelopes, on the database thread), too much for
    every submission. So the bytes bound is checked against a figure at most that old (the
    envelope bound, an index count, always against the store as it is)."""

    def __init__(self, max_age: int = 1000) -> None:
        self.max_age = max_age
        self._seen: dict[str, tuple[int, int]] = {}  # peer -> (bytes, when read)

    def get(self, peer: str, now: int, read: Callable[[str], int]) -> int:
        seen = self._seen.get(peer)
        if seen is None or not 0 <= now - seen[1] < self.max_age:
            seen = self._seen[peer] = (read(peer), now)
        return seen[0]


def retry_after(queue: Queue, rate: tuple[float, float] | None, fallback: float) -> int:
    """Whole seconds (RFC 9110 §10.2.3) until ``queue`` is likely under its bounds again."""
    if rate is None:
        return max(1, min(MAX_RETRY_AFTER, math.ceil(fallback)))
    envelopes, size = queue.excess()
    wait = max(envelopes / rate[0] if rate[0] > 0 else fallback,
               size / rate[1] if rate[1] > 0 else 0.0)
    return max(1, min(MAX_RETRY_AFTER, math.ceil(wait)))


def refuse_if_full(queue: Queue, peer: str, rate: tuple[float, float] | None,
                   fallback: float) -> None:
    """Raise ``QueueFull`` when ``queue`` is at a bound; nothing has been stored yet."""
    if not queue.full:
        return
    seconds = retry_after(queue, rate, fallback)
    raise QueueFull(f"{queue.envelopes} envelopes ({queue.bytes} bytes) wait for {peer}, at "
                    f"the bound of {queue.max_envelopes} envelopes or {queue.max_bytes} bytes; "
                    f"nothing was stored; try again in {seconds} s", retry_after=seconds)


__all__ = ["DrainRate", "Drains", "Queue", "QueuedBytes", "refuse_if_full", "retry_after"]
