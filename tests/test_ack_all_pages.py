"""Acknowledging all items a page at a time (``bridge/engine/ack_all.py``), between two real
engines: across several pages the acknowledgement is what a whole-document one would be (every
item acknowledged on both sides, a disputed item left alone, a per-item receipt that verifies);
an item on a later page whose status may not change so refuses all of it, and nothing of it is
stored, audited or queued. A per-item receipt, read from the store a row at a time, is byte for
byte the one built from the whole documents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core import receipts
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import InputError
from bridge.engine import ack_all


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity,
      monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.setattr(ack_all, "PAGE", 3)  # ten items: four pages
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                    doc_id="M-1")
        harness.courier.settle()
        yield harness


def _statuses(engine: wire.Engine) -> dict[str, str]:
    return {i["id"]: i["status"] for i in wire.items(engine, "M-1")}


def test_all_items_acknowledged_across_pages_as_one_acknowledgement(h: Harness) -> None:
    wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00004", "status": "DISPUTED", "reason": "seal broken"}])
    answer = wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    assert (answer["items"], answer["changed"]) == (9, {"unacknowledged": 9})
    h.courier.settle()
    want = {f"P-{n:05d}": "DISPUTED" if n == 4 else "RECEIVED" for n in range(10)}
    assert _statuses(h.alpha.engine) == _statuses(h.beta.engine) == want
    assert wire.document(h.alpha.engine, "M-1", "out")["state"] == "acknowledged"
    assert h.alpha.engine.receipt("M-1", "P-00009", "out")  # built, and checked, from the store


def test_a_refused_item_on_a_later_page_refuses_all_and_leaves_nothing(h: Harness) -> None:
    wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00008", "status": "IDENTITY_CONFIRMED"}])
    q = wire.sql(h.beta.engine).execute
    counts = "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM ack_entries), " \
             "(SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM audit)"
    before = q(counts).fetchone()
    with pytest.raises(InputError) as err:
        wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED", including=["IDENTITY_CONFIRMED"])
    assert err.value.field == "all" and "P-00008" in err.value.detail
    assert q(counts).fetchone() == before
    assert q("SELECT COUNT(*) FROM sqlite_temp_master WHERE type='table'").fetchone() == (0,)
    assert set(_statuses(h.beta.engine).values()) == {"unacknowledged", "IDENTITY_CONFIRMED"}


@pytest.mark.parametrize("item_id", ["P-00000", "P-00004", "P-00009"])
def test_a_per_item_receipt_read_row_by_row_is_the_one_built_from_whole_documents(
        h: Harness, item_id: str) -> None:
    wire.acknowledge(h.beta.engine, "M-1", items=[
        {"id": "P-00004", "status": "DISPUTED", "reason": "seal broken"}])
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED", including=["DISPUTED"])
    h.courier.settle()
    for side, direction in ((h.alpha.engine, "out"), (h.beta.engine, "in")):
        doc, acks = side.queries.document_bundle("M-1", direction)
        assert side.receipt("M-1", item_id, direction) == receipts.build_item_receipt(
            doc, item_id, acks)
