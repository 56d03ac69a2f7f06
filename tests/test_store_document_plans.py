"""The lookups of one document that every acknowledgement and local-API read makes are index
searches, never a walk of the documents table: their cost must not grow with the store's
history (issue 14, "cost per envelope independent of history"). Asserted on SQLite's own
query plan of the statements each method runs, on a real store file."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.store.sqlite.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "bridge.db")
    with s.transaction():
        for n in range(3):
            for direction in ("out", "in"):
                s.insert_document(id=f"M-{n}", direction=direction, peer="beta",
                                  type="manifest", digest=bytes([n, len(direction)]),
                                  header=b"", sig=b"", count=0, answers=None, meta={},
                                  created=n, state="sent", now=n)
    yield s
    s.close()


_PICKS = re.compile(r"\((?:[a-z]+=\? AND )*(?:id|rowid|digest|answers)=\?")

LOOKUPS: dict[str, Callable[[Store], Any]] = {
    "documents_by_id": lambda s: s.documents_by_id("M-1"),
    "documents_by_id_in": lambda s: s.documents_by_id("M-1", "in"),
    "document_exists": lambda s: s.document_exists("in", "beta", "M-1"),
    "outbound_document": lambda s: s.outbound_document("beta", "M-1"),
    "document_by_digest": lambda s: s.document_by_digest(b"\x01\x02"),
    "document_by_rowid": lambda s: s.document_by_rowid(2),
    "acks_of": lambda s: s.acks_of(2),
    "last_ack_created": lambda s: s.last_ack_created(2),
    "answers_progress": lambda s: s.answers_progress(2),
}


@pytest.mark.parametrize("method", sorted(LOOKUPS))
def test_a_lookup_of_one_document_never_walks_every_document(store: Store, method: str
                                                            ) -> None:
    # Before, documents_by_id had no index on id (the unique one starts with direction): an
    # acknowledgement's lookup of its document read every document of that direction.
    conn = store._conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    LOOKUPS[method](store)
    conn.set_trace_callback(None)
    statements = [s for s in statements if "documents" in s]
    assert statements, method
    for sql in statements:
        plans = [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        # A search on direction alone (the unique index's first column) is a walk of half
        # the table: the constraint must name a column that picks the document (or the
        # acknowledgements answering one). Sorting those few rows is fine.
        searches = [p for p in plans if not p.startswith("USE TEMP B-TREE FOR ORDER BY")]
        assert searches and all(p.startswith("SEARCH") and _PICKS.search(p)
                                for p in searches), (sql, plans)
