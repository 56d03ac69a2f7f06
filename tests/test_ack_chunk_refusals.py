"""A received acknowledgement's chunk that no honest peer signs, applied between two real
engines: an item named twice, an entry that names a declared item by another entry (or by
none), a change its lifecycle forbids among allowed ones. Each is refused with its reason,
whole (no item of the chunk changes), whether the chunk's items are consecutive or not; an
honest chunk of the same shape is applied. Signed with beta's real key (a buggy or
compromised peer), bypassing beta's own checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import AckItem
from bridge.core.streaming import AckStream


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(4)],
                    doc_id="M-1")
        harness.courier.settle()
        yield harness


def _send_ack(h: Harness, entries: list[tuple[str, str, bytes | None]]) -> None:
    """Beta signs an acknowledgement of M-1 with these (item id, status, declared leaf hash)
    entries, as one chunk, and alpha receives it."""
    signed, _ = wire.received_document(h.beta.engine, "M-1")
    stream = AckStream(answers=signed, ack_id="ACK-FORGED", created=h.clock.advance(seconds=1),
                       count=len(entries), salt_key=bytes(32), chunk=8)
    leaves = stream.add([(AckItem(id=i, status=s, reason="seal broken" if s == "DISPUTED"
                                  else None), lh) for i, s, lh in entries])
    stream.finish(h.beta.identity)
    wire.enqueue_raw(h.beta.engine, "chunk", stream.chunk_payload(0, leaves))
    h.courier.settle()


def _statuses(h: Harness) -> list[str]:
    return [wire.item(h.alpha.engine, "M-1", f"P-{n:05d}")["status"] for n in range(4)]


def _lh(h: Harness, n: int) -> bytes:
    return wire.received_document(h.beta.engine, "M-1")[1][f"P-{n:05d}"]


@pytest.mark.parametrize(("forge", "reason"), [
    (lambda lh: [("P-00001", "RECEIVED", lh(1)), ("P-00002", "RECEIVED", lh(2)),
                 ("P-00002", "RECEIVED", lh(2))], "bad_ack"),
    (lambda lh: [("P-00001", "RECEIVED", lh(1)), ("P-00002", "RECEIVED", lh(3))], "bad_ack"),
    (lambda lh: [("P-00001", "RECEIVED", lh(1)), ("P-00002", "RECEIVED", None)], "bad_ack"),
    (lambda lh: [("P-00002", "RECEIVED", lh(2)), ("P-00000", "NOT_RECEIVED", lh(0))],
     "transition_not_allowed"),
], ids=["item_named_twice", "another_items_entry", "no_entry", "forbidden_change"])
def test_a_forged_chunk_of_an_acknowledgement_is_refused_whole(h: Harness, forge: Any,
                                                               reason: str) -> None:
    wire.acknowledge(h.beta.engine, "M-1", items=[{"id": "P-00000", "status": "RECEIVED"}])
    h.courier.settle()
    before = _statuses(h)
    _send_ack(h, forge(lambda n: _lh(h, n)))
    assert [r["reason"] for r in wire.refusals(h.alpha.engine)] == [reason]
    assert _statuses(h) == before


def test_an_honest_chunk_of_the_same_shape_is_applied(h: Harness) -> None:
    _send_ack(h, [("P-00001", "RECEIVED", _lh(h, 1)), ("P-00002", "DISPUTED", _lh(h, 2)),
                  ("P-00000", "RECEIVED", _lh(h, 0))])
    assert wire.refusals(h.alpha.engine) == []
    assert _statuses(h) == ["RECEIVED", "RECEIVED", "DISPUTED", "delivered"]
