"""The SQLite store's own rules, on real files: the migrations (package data, split where SQLite
says a statement ends), the transaction that hands out no connection, and the two record fields
of a manifest entry the store copies into columns (written when the entry is stored, filled by
migration 4 for stores written before it, and checked against the signed bytes by the store
check), and an acknowledgement chunk's lookup of its items by id. Real signed documents, no
daemon, no timings."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from conftest import make_identity

from bridge.core import documents, merkle
from bridge.core.documents import Item, SignedDocument
from bridge.core.errors import StoreCorrupt, StoreError
from bridge.engine.store_check import check_store
from bridge.store.entry_fields import entry_fields
from bridge.store.sqlite import migrate
from bridge.store.sqlite.store import SCHEMA_VERSION, Store

T0 = 1_772_463_600_000  # 2026-03-02T15:00:00.000Z
FIELDS_VERSION = 4  # the migration that adds items.category and items.roster_record


def manifest() -> SignedDocument:
    """A signed manifest whose entries name a category, a roster record, both, or neither."""
    records = [{"kind": "person", "category": "civilian_detainee"},
               {"kind": "person", "roster_record": "CIV-1"},
               {"kind": "person", "category": "pow", "roster_record": "POW-7"},
               {"kind": "remains_package", "bag": "B-1"},
               {"kind": "person", "category": ""}]
    return documents.sign_document(
        make_identity("alpha"), doc_type="manifest", doc_id="M-FIELDS-1", recipient="beta",
        created=T0, meta={"category": "pow"}, salt_key=bytes(32),
        items=[Item(id=f"P-{n}", data=r) for n, r in enumerate(records)])


def insert(conn_or_store: Store | sqlite3.Connection, doc: SignedDocument) -> None:
    """The document and its entries as the engine stores an outbound one; on a raw connection
    (a store of an older schema) with the columns that schema has."""
    rows = [(k, item_id, leaf, merkle.leaf_hash(leaf)) for k, (item_id, leaf)
            in enumerate(zip([f"P-{n}" for n in range(len(doc.leaves))], doc.leaves,
                             strict=True))]
    if isinstance(conn_or_store, Store):
        store = conn_or_store
        with store.transaction():
            row = store.insert_document(
                id=doc.header.id, direction="out", peer="beta", type="manifest",
                digest=doc.digest, header=doc.signed.data, sig=doc.signed.signature,
                count=len(rows), answers=None, meta={"category": "pow"}, created=T0,
                state="queued", now=T0)
            store.insert_items((row, *r, "queued") for r in rows)
        return
    conn = conn_or_store
    with conn:
        cur = conn.execute(
            "INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, "
            "answers, meta, created, state, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.header.id, "out", "beta", "manifest", doc.digest, doc.signed.data,
             doc.signed.signature, len(rows), None, '{"category": "pow"}', T0, "queued", T0))
        conn.executemany("INSERT INTO items (doc, idx, item_id, leaf, lh, transport) "
                         "VALUES (?,?,?,?,?,'queued')", [(cur.lastrowid, *r) for r in rows])


def columns(path: Path) -> list[tuple[str, str | None, str | None]]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute("SELECT item_id, category, roster_record FROM items "
                           "ORDER BY idx").fetchall()


EXPECTED = [("P-0", "civilian_detainee", None), ("P-1", None, "CIV-1"), ("P-2", "pow", "POW-7"),
            ("P-3", None, None), ("P-4", None, None)]


def test_entry_fields_are_the_text_fields_of_the_record_else_none() -> None:
    doc = manifest()
    assert [entry_fields(leaf) for leaf in doc.leaves] == [e[1:] for e in EXPECTED]
    assert entry_fields(b"\xa8category but no msgpack map") == (None, None)


def test_a_stored_manifest_entry_has_its_fields_in_columns_and_the_check_holds(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    insert(store, manifest())
    assert columns(tmp_path / "bridge.db") == EXPECTED
    assert check_store(store.check_rows()) == []
    store.close()


@pytest.mark.parametrize(("statement", "entry"), [
    ("UPDATE items SET category='pow' WHERE item_id='P-0'", "entry 0 (P-0)"),
    ("UPDATE items SET roster_record='POW-8' WHERE item_id='P-2'", "entry 2 (P-2)"),
    ("UPDATE items SET category='pow' WHERE item_id='P-3'", "entry 3 (P-3)"),
])
def test_a_field_column_changed_behind_the_store_is_a_fault(tmp_path: Path, statement: str,
                                                            entry: str) -> None:
    path = tmp_path / "bridge.db"
    store = Store(path)
    insert(store, manifest())
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute(statement)
    (fault,) = check_store(store.check_rows())
    assert fault.where == "out manifest M-FIELDS-1 (beta)"
    assert fault.what.startswith(entry) and "category or roster record" in fault.what
    store.close()


def _store_at(path: Path, version: int) -> sqlite3.Connection:
    """A store as a Bridge of schema ``version`` left it (that many migrations run)."""
    con = sqlite3.connect(path, isolation_level=None)
    for script in migrate.migrations()[:version]:
        for statement in migrate.statements(script):
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {version}")
    return con


def test_migration_4_fills_the_fields_of_entries_stored_before_it(tmp_path: Path) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    with contextlib.closing(_store_at(old, FIELDS_VERSION - 1)) as con:
        insert(con, manifest())
    upgraded = Store(old)
    assert columns(old) == EXPECTED
    assert check_store(upgraded.check_rows()) == []
    fresh = Store(new)
    insert(fresh, manifest())
    assert upgraded.reconcile_items(None) == fresh.reconcile_items(None)
    categories = {(i.category, i.count) for i in upgraded.reconcile_items(None)}
    assert categories == {("civilian_detainee", 1), ("pow", 4)}
    upgraded.close()
    fresh.close()


def test_the_transaction_hands_out_no_connection(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    with store.transaction() as inside:
        assert inside is None
        assert store.in_transaction
    assert not store.in_transaction
    store.close()


def test_migrations_are_numbered_from_1_and_make_the_schema_version() -> None:
    scripts = migrate.migrations()
    assert len(scripts) == SCHEMA_VERSION == migrate.schema_version() >= FIELDS_VERSION
    assert all(migrate.statements(s) for s in scripts)


def test_statements_are_split_where_sqlite_says_one_ends() -> None:
    script = ("-- a comment; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT 'x;y');\n"
              "-- trailing comment\n")
    assert migrate.statements(script) == [
        "-- a comment; with a semicolon\nCREATE TABLE t (a TEXT DEFAULT 'x;y');"]
    with pytest.raises(StoreError, match="ends inside a statement"):
        migrate.statements("CREATE TABLE t (a TEXT")


def test_an_acknowledgement_chunk_s_lookup_does_not_read_the_whole_document(
        tmp_path: Path) -> None:
    """``item_index_of`` finds a few ids of a large document by ``items_by_id``: SQLite's
    work (its virtual machine's steps, counted by a progress handler) stays far below one
    step per stored item. Asked as ``item_id IN (...)``, the planner read every item of the
    document for each acknowledgement chunk."""
    store = Store(tmp_path / "bridge.db")
    n = 20_000
    with store.transaction():
        row = store.insert_document(
            id="M-BIG", direction="in", peer="alpha", type="roster", digest=b"\x01" * 32,
            header=b"", sig=b"", count=n, answers=None, meta={}, created=T0,
            state="received", now=T0)
        store.insert_items_with_fields(
            (row, k, f"P-{k}", b"e", b"\x02" * 32, "unacknowledged", None, None)
            for k in range(n))
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(count, 10)
    found = store.item_index_of(row, ["P-7", "P-12345", "P-19999", "no-such-item"])
    store._conn.set_progress_handler(None, 0)
    assert found == {"P-7": (7, b"\x02" * 32), "P-12345": (12345, b"\x02" * 32),
                     "P-19999": (19999, b"\x02" * 32)}
    assert steps[0] * 10 < n // 4, steps[0]


LEAVES_VERSION = 12
"""The migration that moves entry bytes out of the items rows into item_leaves."""


def test_migration_12_carries_every_entry_s_bytes_and_status_over(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    doc = manifest()
    with contextlib.closing(_store_at(path, LEAVES_VERSION - 1)) as con, con:
        cur = con.execute(
            "INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, "
            "answers, meta, created, state, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.header.id, "out", "beta", "manifest", doc.digest, doc.signed.data,
             doc.signed.signature, len(doc.leaves), None, '{"category": "pow"}', T0, "queued",
             T0))
        con.executemany(
            "INSERT INTO items (doc, idx, item_id, leaf, lh, transport, category, "
            "roster_record) VALUES (?,?,?,?,?,'delivered',?,?)",
            [(cur.lastrowid, k, f"P-{k}", leaf, merkle.leaf_hash(leaf), *entry_fields(leaf))
             for k, leaf in enumerate(doc.leaves)])
    store = Store(path)
    assert store.leaves(1) == list(doc.leaves)
    assert columns(path) == EXPECTED
    assert check_store(store.check_rows()) == []  # the signed root holds over the moved bytes
    assert [r[0] for r in store.items_page(1, status=None, after=-1, limit=10)] == [0, 1, 2, 3, 4]
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as con:
        item_columns = [r[1] for r in con.execute("PRAGMA table_info(items)")]
    assert "leaf" not in item_columns and "status" in item_columns


def test_an_item_whose_entry_bytes_were_deleted_is_a_store_fault(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = Store(path)
    insert(store, manifest())
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("DELETE FROM item_leaves WHERE idx = 2")
    (fault,) = check_store(store.check_rows())
    assert fault.where == "out manifest M-FIELDS-1 (beta)"
    assert fault.what == "entry 2 (P-2): its signed bytes are missing from the store", fault.what
    store.close()


@pytest.mark.parametrize("deleted", [2, 4])  # one inside the document, and its last one
def test_a_missing_entry_bytes_row_is_refused_not_read_past(tmp_path: Path,
                                                            deleted: int) -> None:
    # A retried submission is compared with the stored entries a page at a time: a row left
    # out would shift every later entry onto the wrong item, and a missing last one would
    # leave the retry judged by nothing there.
    path = tmp_path / "bridge.db"
    store = Store(path)
    doc = manifest()
    insert(store, doc)
    assert store.leaves(1, 0, 10) == list(doc.leaves) == store.leaves(1)
    with contextlib.closing(sqlite3.connect(path)) as con, con:
        con.execute("DELETE FROM item_leaves WHERE idx = ?", (deleted,))
    for read in (lambda: store.leaves(1), lambda: store.leaves(1, 0, 10),
                 lambda: store.leaves(1, deleted, 1)):
        with pytest.raises(StoreCorrupt, match=rf"entry {deleted} .*missing"):
            read()
    assert store.leaves(1, 0, deleted) == list(doc.leaves[:deleted])  # the rows before it
    store.close()
