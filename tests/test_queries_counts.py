"""A document's counts by status (its summary) are counted once and kept until something is
written: they follow every acknowledgement, dispute, later status and refused change, and an
edit behind the daemon's back is counted again (and checked) at once. Real engines on real
SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import InputError


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                    doc_id="M-1")
        harness.courier.settle()
        yield harness


class Counting:
    """How often the store counted the items (the spy around ``Store.item_counts``)."""

    def __init__(self, engine: wire.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = engine.store.item_counts

        def counted(doc: int) -> Any:
            self.calls += 1
            return real(doc)
        monkeypatch.setattr(engine.store, "item_counts", counted)


def _items(engine: wire.Engine, direction: str = "in") -> dict[str, Any]:
    summary: dict[str, Any] = wire.document(engine, "M-1", direction)["items"]
    return summary


def test_counts_follow_acknowledgements_disputes_later_statuses_and_refusals(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    b = h.beta.engine
    spy = Counting(b, monkeypatch)
    assert _items(b) == {"total": 10, "acknowledged": 0, "by_status": {"unacknowledged": 10}}
    assert _items(b)["by_status"] == {"unacknowledged": 10} and spy.calls == 1  # kept
    wire.acknowledge(b, "M-1", items=[{"id": "P-00003", "status": "DISPUTED",
                                       "reason": "not this person"}])
    assert _items(b) == {"total": 10, "acknowledged": 1,
                         "by_status": {"DISPUTED": 1, "unacknowledged": 9}}
    wire.acknowledge(b, "M-1", all="RECEIVED")
    assert _items(b)["by_status"] == {"DISPUTED": 1, "RECEIVED": 9}
    wire.acknowledge(b, "M-1", items=[{"id": "P-00003", "status": "IDENTITY_CONFIRMED"}])
    assert _items(b)["by_status"] == {"IDENTITY_CONFIRMED": 1, "RECEIVED": 9}
    calls = spy.calls
    with pytest.raises(InputError):  # refused: nothing written, the counts stand
        wire.acknowledge(b, "M-1", items=[{"id": "P-00099", "status": "RECEIVED"}])
    assert _items(b)["by_status"] == {"IDENTITY_CONFIRMED": 1, "RECEIVED": 9}
    assert spy.calls in (calls, calls + 1)
    h.courier.settle()
    assert _items(h.alpha.engine, "out") == {"total": 10, "acknowledged": 10, "by_status": {
        "IDENTITY_CONFIRMED": 1, "RECEIVED": 9}}


def test_an_edit_behind_the_daemon_s_back_is_counted_again_and_checked(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counts were kept; another connection then writes the file: the summary counts
    again, and the status it reads is checked against the signed history (500, not a count
    of a status nobody signed)."""
    b = h.beta.engine
    wire.acknowledge(b, "M-1", all="RECEIVED")
    spy = Counting(b, monkeypatch)
    assert _items(b)["by_status"] == {"RECEIVED": 10}
    con = sqlite3.connect(h.beta.home.db_path)
    try:
        with con:
            con.execute("UPDATE items SET status = 'WITHHELD' WHERE item_id = 'P-00004'")
    finally:
        con.close()
    with pytest.raises(Exception, match="P-00004"):
        _items(b)
    assert spy.calls == 1
    assert wire.health(b)["status"] == "store_corrupt"


def test_an_outbound_document_s_counts_follow_its_delivery(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """Before any status, an outbound document's items are counted by how far they went
    (queued, delivered), which changes with no acknowledgement: never kept stale."""
    with open_pair(tmp_path, alpha, beta) as h:
        a = h.alpha.engine
        wire.submit(a, "manifest", "beta", [person(n) for n in range(10)], doc_id="M-1")
        assert _items(a, "out")["by_status"] == {"queued": 10}
        h.courier.settle()
        assert _items(a, "out")["by_status"] == {"delivered": 10}
        wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
        h.courier.settle()
        assert _items(a, "out") == {"total": 10, "acknowledged": 10,
                                    "by_status": {"RECEIVED": 10}}
