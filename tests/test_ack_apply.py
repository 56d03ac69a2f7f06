"""Applying a received acknowledgement (``Intake._apply_ack_chunk``) against a store the daemon
has checked: its chunks are not checked again against the signed history while only this
daemon writes the store, and an edit made behind its back meanwhile is still caught before a
chunk's statuses are believed (SECURITY.md, "A damaged store")."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness, open_pair, person, wire

from bridge.core.crypto.identity import PrivateIdentity


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> Iterator[Harness]:
    with open_pair(tmp_path, alpha, beta) as harness:  # four items a chunk: three chunks
        wire.submit(harness.alpha.engine, "manifest", "beta", [person(n) for n in range(10)],
                    doc_id="M-1")
        harness.courier.settle()
        yield harness


def _history_reads(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each read of alpha's signed history that checks a range of items."""
    store = h.alpha.engine.engine.store
    calls: list[Any] = []
    real = store.status_mismatch

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "status_mismatch", counted)
    return calls


def test_a_store_found_sound_is_not_read_again_for_each_chunk(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    h.alpha.engine.check_store()  # as the daemon does at start: every status holds
    calls = _history_reads(h, monkeypatch)
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    h.courier.settle()
    assert calls == []
    assert {i["status"] for i in wire.items(h.alpha.engine, "M-1")} == {"RECEIVED"}
    assert wire.document(h.alpha.engine, "M-1", "out")["state"] == "acknowledged"


def test_an_edit_behind_the_daemon_s_back_is_caught_before_a_chunk_is_applied(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the check at start, another connection writes a status into alpha's items table
    only (its signed history says nothing of it): the first acknowledgement chunk naming that
    item reads the history again, finds the lie and is answered "unavailable", not applied."""
    h.alpha.engine.check_store()
    calls = _history_reads(h, monkeypatch)
    other = sqlite3.connect(h.alpha.home.db_path)
    with other:
        other.execute("UPDATE items SET status='WITHHELD', status_at=1 WHERE item_id='P-00001'")
    other.close()
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    trip = h.courier.step(h.beta)
    assert trip is not None and trip.outcome is not None and not trip.outcome.progress
    assert calls, "the chunk was applied without reading the signed history"
    assert wire.health(h.alpha.engine)["status"] != "ok"
    rows = wire.sql(h.alpha.engine).execute(
        "SELECT COUNT(*) FROM ack_entries").fetchone()
    assert rows == (0,)
