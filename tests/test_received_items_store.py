"""A received chunk's items stored from its columns, many rows a statement: the same rows as
one ``INSERT`` per row would store, across a statement's boundary, and nothing of a chunk whose
columns disagree in length. A real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.core.errors import VerificationError
from bridge.store.sqlite.items import ROWS_PER_STATEMENT
from bridge.store.sqlite.store import Store

T0 = 1_772_463_600_000


def _document(store: Store, count: int) -> int:
    return store.insert_document(
        id="M-1", direction="in", peer="alpha", type="manifest", digest=b"\x01" * 32,
        header=b"", sig=b"", count=count, answers=None, meta={}, created=T0,
        state="receiving", now=T0)


def _rows(store: Store, doc: int) -> list[tuple[object, ...]]:
    conn: sqlite3.Connection = store._conn
    return list(conn.execute(
        "SELECT i.doc, i.idx, i.item_id, e.leaf, i.lh, i.transport, i.status, i.category, "
        "i.roster_record FROM items i JOIN item_leaves e ON (e.doc, e.idx) = (i.doc, i.idx) "
        "WHERE i.doc=? ORDER BY i.idx", (doc,)))


def test_columns_past_a_statements_rows_are_stored_as_one_row_each_in_order(
        tmp_path: Path) -> None:
    n = 2 * ROWS_PER_STATEMENT + 3  # two full statements and a short one
    first = 4 * ROWS_PER_STATEMENT  # a later chunk: indexes from its first
    store = Store(tmp_path / "bridge.db")
    ids = [f"P-{k}" for k in range(n)]
    leaves = [b"entry-%d" % k for k in range(n)]
    hashes = [k.to_bytes(32, "big") for k in range(n)]
    categories = ["pow" if k % 3 else None for k in range(n)]
    records = [f"R-{k}" if k % 2 else None for k in range(n)]
    with store.transaction():
        doc = _document(store, first + n)
        store.insert_received_items(doc, first, (ids, leaves, hashes, categories, records))
    assert _rows(store, doc) == [
        (doc, first + k, ids[k], leaves[k], hashes[k], "unacknowledged", None, categories[k],
         records[k]) for k in range(n)]
    assert store.item_index_of(doc, ["P-0", f"P-{n - 1}"]) == {
        "P-0": (first, hashes[0]), f"P-{n - 1}": (first + n - 1, hashes[n - 1])}


def test_an_sqlite_allowing_fewer_variables_a_statement_takes_fewer_rows_each(
        tmp_path: Path) -> None:
    """999 variables a statement, SQLite's limit before 3.32: 124 rows a statement, not a
    "too many SQL variables" error."""
    store = Store(tmp_path / "bridge.db")
    conn: sqlite3.Connection = store._conn
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    n = ROWS_PER_STATEMENT + 1
    with store.transaction():
        doc = _document(store, n)
        store.insert_received_items(doc, 0, (
            [f"P-{k}" for k in range(n)], [b"e"] * n, [b"\x02" * 32] * n, [None] * n,
            [None] * n))
    assert [r[1] for r in _rows(store, doc)] == list(range(n))


def test_columns_of_different_lengths_store_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    n = ROWS_PER_STATEMENT + 1
    with store.transaction():
        doc = _document(store, n)
    short = [None] * (n - 1)
    with pytest.raises(ValueError, match="different lengths"), store.transaction():
        store.insert_received_items(doc, 0, (
            [f"P-{k}" for k in range(n)], [b"e"] * n, [b"\x02" * 32] * n, [None] * n, short))
    assert _rows(store, doc) == []


def test_an_item_id_twice_in_one_statement_is_the_peers_fault_and_stores_nothing(
        tmp_path: Path) -> None:
    """items_by_id is unique per document: the statement fails whole, as ``duplicate_item``
    (a peer's document), and the caller's transaction takes nothing of the chunk."""
    store = Store(tmp_path / "bridge.db")
    n = 5
    with store.transaction():
        doc = _document(store, n)
    ids = ["P-0", "P-1", "P-2", "P-1", "P-4"]
    with pytest.raises(VerificationError, match="entries 0 to 4") as exc, store.transaction():
        store.insert_received_items(doc, 0, (ids, [b"e"] * n, [b"\x02" * 32] * n,
                                             [None] * n, [None] * n))
    assert exc.value.reason == "duplicate_item"
    assert _rows(store, doc) == []


def test_rows_of_two_documents_interleaved_are_each_stored_under_their_own(
        tmp_path: Path) -> None:
    """``insert_items_with_fields`` takes a statement per document among each batch of rows:
    rows of two documents in turn, past a statement's rows, each land in their own document
    with their own entry bytes and transport."""
    store = Store(tmp_path / "bridge.db")
    n = ROWS_PER_STATEMENT + 5
    with store.transaction():
        docs = (_document(store, n), store.insert_document(
            id="M-2", direction="out", peer="alpha", type="manifest", digest=b"\x02" * 32,
            header=b"", sig=b"", count=n, answers=None, meta={}, created=T0, state="queued",
            now=T0))
        rows = [(docs[k % 2], k // 2, f"P-{k}", b"entry-%d" % k, bytes([k % 251]) * 32,
                 ("unacknowledged", "queued")[k % 2], f"c{k}", None) for k in range(2 * n)]
        store.insert_items_with_fields(iter(rows))
    for d, doc in enumerate(docs):
        assert _rows(store, doc) == [(r[0], r[1], r[2], r[3], r[4], r[5], None, r[6], r[7])
                                     for r in rows[d::2]]


def test_an_item_row_short_of_a_value_is_refused_and_its_batch_not_stored(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    with store.transaction():
        doc = _document(store, 3)
    good = [(doc, k, f"P-{k}", b"e", b"\x02" * 32, "unacknowledged", None, None)
            for k in range(2)]
    with pytest.raises(ValueError, match="8 values"):
        store.insert_items_with_fields([*good, (doc, 2, "P-2", b"e", b"\x02" * 32, "queued")])
    assert _rows(store, doc) == []
