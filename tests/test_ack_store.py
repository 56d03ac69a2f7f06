"""The store's part in applying a received acknowledgement (``bridge/engine/intake.py``): each
chunk's items found by their ids alone, however much of the document is acknowledged already,
and each declared item's latest status set from the chunk's entries in one statement, an item
never declared left to its history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.store.sqlite import bulk
from bridge.store.sqlite.store import Store

T0 = 1_767_225_600_000


def _document(store: Store, n: int, *, digest: bytes = b"\x01" * 32) -> int:
    with store.transaction():
        row = store.insert_document(
            id=f"M-{digest[0]}", direction="out", peer="beta", type="manifest", digest=digest,
            header=b"", sig=b"", count=n, answers=None, meta={}, created=T0,
            state="sent", now=T0)
        store.insert_items_with_fields(
            (row, k, f"P-{k}", b"e", bytes([k % 256]) * 32, "sent", None, None)
            for k in range(n))
    return row


def test_a_late_chunk_of_an_acknowledgement_does_not_read_the_items_acknowledged_before(
        tmp_path: Path) -> None:
    """With every item of a large document acknowledged already, looking up one chunk's items
    (index, leaf hash and status) takes SQLite's virtual machine far fewer steps than there
    are items: the statuses were read from a range of items_by_status, every acknowledged item
    of the document for each chunk, so the last chunks of a large acknowledgement cost the
    most."""
    store = Store(tmp_path / "bridge.db")
    n = 20_000
    row = _document(store, n)
    with store.transaction():
        store.set_all_statuses(row, "RECEIVED", None, None, T0 + 1)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    store._conn.set_progress_handler(count, 10)
    found = store.ack_targets(row, ["P-19999", "no-such-item", "P-7"])
    store._conn.set_progress_handler(None, 0)
    assert found == [(19999, bytes([19999 % 256]) * 32, "RECEIVED"), None,
                     (7, b"\x07" * 32, "RECEIVED")]
    assert steps[0] * 10 < n // 4, steps[0]


@pytest.mark.parametrize("ids", [
    ["P-3", "P-4", "P-5", "P-6"], ["P-3", "P-5", "P-6"], ["P-6", "P-5", "P-4"],
    ["P-3", "X-1", "P-5"], ["X-1", "P-4"], ["P-8", "P-9", "P-0"], ["P-9"], ["P-4", "P-4"],
], ids=["consecutive", "one_skipped", "reversed", "undeclared_between", "undeclared_first",
        "past_the_end", "last_alone", "named_twice"])
def test_a_chunk_s_items_found_by_a_range_are_those_a_probe_each_finds(
        tmp_path: Path, ids: list[str]) -> None:
    """The range read for consecutive items answers exactly what one probe per id answers;
    ids that are not consecutive items (a gap, another order, an item never declared, the
    document's end) are each probed."""
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 10)
    with store.transaction():
        store.set_statuses_at(row, [4], "DISPUTED", "seal broken", None, T0 + 1)
    lh = {f"P-{k}": (k, bytes([k]) * 32) for k in range(10)}
    expected = [(*lh[i], "DISPUTED" if i == "P-4" else None) if i in lh else None for i in ids]
    assert store.ack_targets(row, ids) == expected
    quick = store._ack_target_run(row, ids)
    assert (quick is not None) == (ids in (["P-3", "P-4", "P-5", "P-6"], ["P-9"]))


def test_statuses_copied_from_a_chunk_of_mixed_entries_are_each_item_s_own(
        tmp_path: Path) -> None:
    """Entries of different statements in one chunk: each declared item takes its own entry's
    status, reason, evidence and time; an item outside the chunk's range, an item of another
    document and an entry for an item never declared change nothing."""
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 6)
    other = _document(store, 6, digest=b"\x02" * 32)
    at = T0 + 5
    with store.transaction():
        ack = store.insert_document(
            id="A-1", direction="in", peer="beta", type="ack", digest=b"\x03" * 32, header=b"",
            sig=b"", count=5, answers=row, meta={}, created=at, state="receiving", now=at)
        store.insert_ack_entries([
            (ack, 0, row, 0, "P-0", "RECEIVED", None, None, b"l0", at),
            (ack, 1, row, 2, "P-2", "DISPUTED", "seal broken", None, b"l1", at),
            (ack, 2, row, None, "X-9", "RECEIVED_UNDECLARED", None, None, b"l2", at),
            (ack, 3, row, 3, "P-3", "IDENTITY_CONFIRMED", None, "dental record", b"l3", at),
            (ack, 4, row, 5, "P-5", "RECEIVED", None, None, b"l4", at)])
        store.statuses_from_ack(row, ack, 0, 4)  # entry 4 (P-5) is the next chunk's
    got = {r[1]: r[2:6] for r in store.items_page(row, status=None, after=-1, limit=10)}
    assert got == {
        "P-0": ("RECEIVED", None, None, at), "P-1": ("sent", None, None, None),
        "P-2": ("DISPUTED", "seal broken", None, at),
        "P-3": ("IDENTITY_CONFIRMED", None, "dental record", at),
        "P-4": ("sent", None, None, None), "P-5": ("sent", None, None, None)}
    assert {r[2] for r in store.items_page(other, status=None, after=-1, limit=10)} == {"sent"}


def test_entries_inserted_a_few_hundred_rows_a_statement_are_each_stored_as_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bulk.insert_rows`` across statement boundaries (7 rows a statement here, and a last
    statement of fewer): every entry stored once with its own values, None and bytes kept."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 7)
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 30)
    rows = [(row, k, row, k if k % 5 else None, f"P-{k}", "RECEIVED", None if k % 2 else "r",
             None, bytes([k]) * (k + 1), T0 + k) for k in range(30)]
    with store.transaction():
        store.insert_ack_entries(iter(rows))
    stored = wire_rows(store, "SELECT ack, idx, item_doc, item_idx, item_id, status, reason, "
                              "evidence, leaf, at FROM ack_entries ORDER BY idx")
    assert stored == rows


def test_a_row_of_the_wrong_width_stores_nothing_of_its_statement(tmp_path: Path) -> None:
    """A row short of a value (and one long by one, which would together bind the right number
    of parameters, misaligned) is refused before its statement runs."""
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 2)
    good = (row, 0, row, 0, "P-0", "RECEIVED", None, None, b"l", T0)
    with pytest.raises(ValueError, match="rows of 10 values"):
        with store.transaction():
            store.insert_ack_entries([good, good[:9], (*good, "extra")])
    assert wire_rows(store, "SELECT COUNT(*) FROM ack_entries") == [(0,)]


@pytest.mark.parametrize(("reason", "evidence"), [(None, None), ("seal broken", "photo 4")])
def test_entries_of_one_statement_stored_with_its_values_bound_once_are_each_as_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reason: str | None,
        evidence: str | None) -> None:
    """``bulk.insert_rows_sharing`` across statement boundaries: each row's own values (None
    and bytes kept) in their places, the shared ones in theirs, in every statement."""
    monkeypatch.setattr(bulk, "ROWS_PER_STATEMENT", 7)
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 30)
    own = [(k, k if k % 5 else None, f"P-{k}", bytes([k]) * (k + 1)) for k in range(30)]
    with store.transaction():
        store.insert_uniform_ack_entries(ack=row, doc=row, status="DISPUTED", reason=reason,
                                         evidence=evidence, at=T0 + 3, rows=iter(own))
    stored = wire_rows(store, "SELECT ack, idx, item_doc, item_idx, item_id, status, reason, "
                              "evidence, leaf, at FROM ack_entries ORDER BY idx")
    assert stored == [(row, k, row, item_idx, item_id, "DISPUTED", reason, evidence, leaf,
                       T0 + 3) for k, item_idx, item_id, leaf in own]
    with pytest.raises(ValueError, match="rows of 4 values"), store.transaction():
        store.insert_uniform_ack_entries(ack=row, doc=row, status="RECEIVED", reason=None,
                                         evidence=None, at=T0, rows=[(30, 0, "P-0")])


def wire_rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return list(store._conn.execute(sql))


@pytest.mark.parametrize("indexes", [[2, 3, 4], [4, 2, 3], [1, 3, 4], [2, 2, 4], [5]])
def test_one_statement_for_a_run_of_items_sets_exactly_those_items(
        tmp_path: Path, indexes: list[int]) -> None:
    """A contiguous run of indexes (in any order) takes the primary key's range; a run with a
    gap, or a repeated index whose span only looks contiguous, takes the list: either way
    exactly the items named change, no neighbour."""
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 8)
    with store.transaction():
        store.set_statuses_at(row, indexes, "DISPUTED", "seal broken", None, T0 + 9)
    got = {r[0]: r[2] for r in store.items_page(row, status=None, after=-1, limit=10)}
    assert got == {k: "DISPUTED" if k in indexes else "sent" for k in range(8)}


def _entry(ack: int, doc: int, n: int) -> tuple[object, ...]:
    return (ack, n, doc, n, f"P-{n}", "RECEIVED", None, None, b"l", T0 + 1)


def _ack_document(store: Store, doc: int, digest: bytes) -> int:
    return store.insert_document(
        id=f"A-{digest[0]}", direction="out", peer="beta", type="ack", digest=digest,
        header=b"", sig=b"", count=2, answers=doc, meta={}, created=T0 + 1, state="sent",
        now=T0 + 1)


def test_entries_stored_before_their_acknowledgement_name_it_once_committed(
        tmp_path: Path) -> None:
    """Entries stored under the reserved rowid, then their acknowledgement: committed, they
    name it; an entry naming no document is refused at once again after the block."""
    store = Store(tmp_path / "bridge.db")
    doc = _document(store, 2)
    with store.transaction(), store.entries_before_their_ack() as ack:
        store.insert_ack_entries([_entry(ack, doc, 0), _entry(ack, doc, 1)])
        assert _ack_document(store, doc, b"\x05" * 32) == ack
    assert store.ack_leaves_range(ack, 0, 5) == [b"l", b"l"]
    with pytest.raises(sqlite3.IntegrityError), store.transaction():
        store.insert_ack_entries([_entry(ack + 1, doc, 0)])


def test_entries_of_an_acknowledgement_never_stored_fail_only_their_own_operation(
        tmp_path: Path) -> None:
    """Inside a group: an operation whose entries are refused halfway (its acknowledgement
    never stored) takes back only its own writes; the group's other operations commit, and
    no entry naming no document reaches the disk."""
    store = Store(tmp_path / "bridge.db")
    doc = _document(store, 2)
    store.begin_group()
    with pytest.raises(RuntimeError), store.transaction(), \
            store.entries_before_their_ack() as orphan:
        store.insert_ack_entries([_entry(orphan, doc, 0)])
        raise RuntimeError("an item on a later page may not change so")
    with store.transaction():
        kept = _ack_document(store, doc, b"\x06" * 32)
        store.insert_ack_entries([_entry(kept, doc, 0)])
    store.commit_group()
    assert orphan == kept  # the refused operation's rowid was free again
    assert store.ack_leaves_range(kept, 0, 5) == [b"l"]
    assert store._conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_an_acknowledgement_of_all_counts_the_items_its_pages_read(tmp_path: Path) -> None:
    """The counts (by the index alone when no status is included) name exactly the items
    the pages then read: an item with a status is left out unless its status is included,
    and a document with nothing left to acknowledge counts nothing."""
    store = Store(tmp_path / "bridge.db")
    row = _document(store, 6)
    with store.transaction():
        store.set_statuses_at(row, [1], "RECEIVED", None, None, T0 + 1)
        store.set_statuses_at(row, [2], "DISPUTED", "seal broken", None, T0 + 1)
    for including, expected in (([], {"unacknowledged": 4}),
                                (["DISPUTED"], {"unacknowledged": 4, "DISPUTED": 1})):
        assert store.ack_all_counts(row, including, "RECEIVED", None) == expected
        page = store.ack_all_page(row, including, "RECEIVED", None, -1, 10)
        assert len(page) == sum(expected.values())
    with store.transaction():
        store.set_all_statuses(row, "RECEIVED", None, None, T0 + 2)
    assert store.ack_all_counts(row, [], "RECEIVED", None) == {}


@pytest.mark.parametrize("limit", [999, 25])
def test_an_sqlite_binding_fewer_parameters_a_statement_still_stores_every_entry(
        tmp_path: Path, limit: int) -> None:
    """An SQLite built with a lower SQLITE_MAX_VARIABLE_NUMBER (999 before 3.32) refuses a
    statement of 256 ten-value rows whole: the inserts take fewer rows a statement there."""
    store = Store(tmp_path / "bridge.db")
    store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    row = _document(store, 300)
    rows = [(row, k, row, k, f"P-{k}", "RECEIVED", None, None, bytes([k % 256]), T0 + k)
            for k in range(300)]
    with store.transaction():
        store.insert_ack_entries(iter(rows))
    assert wire_rows(store, "SELECT COUNT(*) FROM ack_entries") == [(300,)]
    shared = [(k, bytes([k % 256])) for k in range(300)]
    with store.transaction():
        bulk.insert_rows_sharing(store._conn, "INSERT INTO ack_entries (ack, idx, item_doc, "
                                 "item_idx, item_id, status, reason, evidence, leaf, at)",
                                 (row, "RECEIVED", T0), ("?1", 0, "?1", "NULL", "'Q'", "?2",
                                                         "NULL", "NULL", 1, "?3"), 2,
                                 [(300 + k, leaf) for k, leaf in shared])
    assert wire_rows(store, "SELECT COUNT(*) FROM ack_entries") == [(600,)]


@pytest.mark.parametrize("how", ["set_all_statuses", "uniform_ack_of_every_item"])
def test_a_status_for_every_item_walks_the_table_in_index_order_not_by_item_id(
        tmp_path: Path, how: str) -> None:
    """Setting one status on every item of a document whose ids are in no particular order
    (shuffled here, as real item ids are) visits the rows by the primary key: walked by
    items_by_id, each row was sought from the root at a random place in the table, which costs
    far more per item once the table outgrows the page cache (1,000,000 items: 21.8 s of CPU
    against 1.7 s). Every item of the document takes the status; the other document's none."""
    store = Store(tmp_path / "bridge.db")
    n = 50
    ids = [f"P-{(k * 37) % n:03d}" for k in range(n)]  # a permutation: no order by idx
    rows = []
    for digest in (b"\x01" * 32, b"\x02" * 32):
        with store.transaction():
            row = store.insert_document(
                id=f"M-{digest[0]}", direction="in", peer="alpha", type="manifest",
                digest=digest, header=b"", sig=b"", count=n, answers=None, meta={},
                created=T0, state="received", now=T0)
            store.insert_items_with_fields(
                (row, k, ids[k], b"e", bytes([k]) * 32, "unacknowledged", None, None)
                for k in range(n))
        rows.append(row)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    with store.transaction():
        if how == "set_all_statuses":
            store.set_all_statuses(rows[0], "RECEIVED", None, None, T0 + 1)
        else:
            store.set_statuses_from_uniform_ack(99, rows[0], "RECEIVED", None, T0 + 1,
                                                every_item=True)
    store._conn.set_trace_callback(None)
    updates = [s for s in statements if s.startswith("UPDATE items")]
    assert len(updates) == 1, statements
    plans = [str(r[-1]) for r in store._conn.execute(f"EXPLAIN QUERY PLAN {updates[0]}")]
    assert plans == ["SEARCH items USING PRIMARY KEY (doc=? AND idx>?)"], plans
    assert store.current_statuses(rows[0])[0] == dict.fromkeys(ids, "RECEIVED")
    assert store.current_statuses(rows[1])[0] == {}
    store.close()
