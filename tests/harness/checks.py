"""Checks several tests make, written once: what a sender must do with a hostile answer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bridge.core.crypto.identity import PrivateIdentity

from . import hostile, wire
from .pair import Harness, open_pair
from .wire import Answer, Pending

Honest = Callable[[], Answer]
HostileAnswer = Callable[[Pending, Honest], Answer]


@contextmanager
def one_delivered_one_pending(root: Path, alpha: PrivateIdentity, beta: PrivateIdentity
                              ) -> Iterator[Harness]:
    """Alpha has delivered M-0 (seq 1) and has M-1 (seq 2) pending for beta."""
    with open_pair(root, alpha, beta) as h:
        wire.submit(h.alpha.engine, "manifest", "beta", [person(0)], doc_id="M-0")
        h.courier.settle()
        wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
        yield h


def person(n: int) -> dict[str, Any]:
    """A synthetic prisoner-of-war record (invented names, no real person)."""
    return {"id": f"P-{n:05d}", "surname": f"Testname{n}", "first_names": "Sample Person",
            "rank": "private", "date_of_birth": f"{1980 + n % 25}-0{1 + n % 9}-1{n % 10}",
            "service_number": f"SN-{n:07d}"}


def beta_says(h: Harness, *, status: int = 200, **fields: object) -> HostileAnswer:
    """Beta's real key signs its receipt for the envelope, with ``fields`` replaced."""
    key = h.beta.identity
    return lambda p, honest: hostile.signed(key, hostile.statement(key, p, **fields),
                                            status=status)


def refused_then_delivered(h: Harness, answerer: HostileAnswer, reason: str) -> None:
    """Alpha has delivered seq 1 and has seq 2 pending. It refuses ``answerer``'s answer to
    seq 2 with ``reason``, counts it, keeps its outbox, and then delivers seq 2 exactly once
    to the honest receiver."""
    before = wire.outbox(h.alpha.engine, "beta")
    trip = h.courier.step(h.alpha, answerer=answerer)
    assert trip is not None and trip.seq == 2 and trip.outcome is not None
    assert (trip.outcome.state, trip.outcome.reason) == ("failed", reason), trip.outcome
    assert wire.metric(h.alpha.engine, "delivery_failed") == 1
    after = wire.outbox(h.alpha.engine, "beta")
    assert after[0] == before[0]  # what was delivered stays delivered, with its receipt
    assert (after[1].state, after[1].receipt, after[1].attempts) == (
        "pending", None, before[1].attempts + 1)
    assert wire.health(h.alpha.engine)["status"] == "ok"

    trips = h.courier.settle()
    assert [(t.seq, t.outcome and t.outcome.state) for t in trips] == [(2, "delivered")]
    assert wire.inbox_seqs(h.beta.engine, "alpha") == [1, 2]
    assert len(wire.events(h.beta.engine, "document_received")) == 2
