"""The outbox at any age (migration 5): an envelope's sealed bytes are kept beside its small
hot row, in ``outbox_sent``, from sealing on (an attempt or a receipt never writes them again),
a rewind after a gap resends the very same bytes, what delivery and metrics ask is answered by
an index (never a scan that reads envelopes), and a store written before migration 5 has its
finished envelopes moved when it opens. Real SQLite files,
no daemon, no timings (the figures are in bench/aging.py)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.store.sqlite import migrate
from bridge.store.sqlite.store import Store

T0 = 1_772_463_600_000
SENT_VERSION = 5  # the migration that adds outbox_sent


def _document(store: Store) -> int:
    return store.insert_document(
        id="M-1", direction="out", peer="beta", type="manifest", digest=b"d" * 32,
        header=b"h", sig=b"s", count=3, answers=None, meta={}, created=T0, state="queued",
        now=T0)


def _queue(store: Store, doc: int, seqs: range) -> None:
    for seq in seqs:
        store.insert_outbox(peer="beta", seq=seq, msg_id=bytes([seq]) * 16,
                            digest=bytes([seq]) * 32, envelope=b"sealed-%d" % seq * 500,
                            kind="chunk", doc=doc, first=seq - 1, n=1, now=T0)


def _raw(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "bridge.db")
    with s.transaction():
        _queue(s, _document(s), range(1, 4))
    yield s
    s.close()


def test_a_delivered_envelope_leaves_only_its_receipt_in_the_hot_row(
        store: Store, tmp_path: Path) -> None:
    with store.transaction():
        store.finish_outbox("beta", 1, "delivered", b"receipt-1", T0 + 1)
    assert _raw(tmp_path / "bridge.db", "SELECT seq, length(envelope), receipt FROM outbox "
                "WHERE seq=1") == [(1, 0, b"receipt-1")]
    assert store.envelope_bytes("beta", 1) == b"sealed-1" * 500  # kept for a transcript
    assert store.envelope_bytes("beta", 9) is None
    row = store.next_pending("beta")
    assert row is not None and (row.seq, row.envelope) == (2, b"sealed-2" * 500)
    assert store.pending_for_doc(row.doc or 0) == 2


def test_a_rewind_after_a_gap_resends_the_very_same_bytes(store: Store, tmp_path: Path) -> None:
    with store.transaction():
        for seq in (1, 2):
            store.finish_outbox("beta", seq, "delivered", b"r%d" % seq, T0 + seq)
    with store.transaction():
        assert store.rewind_outbox("beta", 1) == 2  # the peer lost everything from 1 on
    row = store.next_pending("beta")
    assert row is not None and (row.seq, row.envelope) == (1, b"sealed-1" * 500)
    # The bytes never moved: one copy of each envelope, beside its row.
    assert _raw(tmp_path / "bridge.db", "SELECT seq FROM outbox_sent ORDER BY seq") == [
        (1,), (2,), (3,)]
    with store.transaction():
        store.finish_outbox("beta", 1, "delivered", b"r1 again", T0 + 9)
    assert store.envelope_bytes("beta", 1) == b"sealed-1" * 500
    assert _raw(tmp_path / "bridge.db", "SELECT COUNT(*) FROM outbox_sent") == [(3,)]


def test_an_envelope_is_kept_beside_its_row_from_the_moment_it_is_sealed(
        store: Store, tmp_path: Path) -> None:
    assert _raw(tmp_path / "bridge.db", "SELECT seq, length(envelope) FROM outbox ORDER BY seq"
                ) == [(1, 0), (2, 0), (3, 0)]
    assert store.pending_bytes("beta") == 3 * len(b"sealed-1" * 500)
    assert store.pending_bytes("gamma") == 0


def _wal_after(path: Path, store: Store, change: Callable[[], None]) -> int:
    """The bytes ``change`` (one transaction) wrote to the write-ahead log."""
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    wal = path.with_name(path.name + "-wal")
    before = wal.stat().st_size if wal.exists() else 0
    with store.transaction():
        change()
    return wal.stat().st_size - before


def test_counting_an_attempt_at_a_big_envelope_does_not_write_the_envelope_again(
        tmp_path: Path) -> None:
    # SQLite rewrites a whole row on any update: with the envelope in the row, each attempt
    # at a 1 MiB chunk wrote that megabyte to the log again (and fsynced it).
    path = tmp_path / "bridge.db"
    store = Store(path)
    try:
        with store.transaction():
            doc = _document(store)
            store.insert_outbox(peer="beta", seq=1, msg_id=b"m" * 16, digest=b"e" * 32,
                                envelope=bytes(1 << 20), kind="chunk", doc=doc, first=0, n=3,
                                now=T0)
        for _ in range(3):  # 1 -> 2 changes the size of the row's attempts field
            written = _wal_after(path, store, lambda: store.count_attempt("beta", 1))
            assert 0 < written < 64 * 1024, written
        finished = _wal_after(path, store, lambda: store.finish_outbox(
            "beta", 1, "delivered", b"receipt", T0 + 1))
        assert 0 < finished < 64 * 1024, finished
        row = store.pending_rows("beta", 0, 1)
        assert row == [] and store.envelope_bytes("beta", 1) == bytes(1 << 20)
    finally:
        store.close()


@pytest.mark.parametrize("method", ["counters", "queue_of", "pending_count"])
def test_what_metrics_count_never_reads_a_pending_row_to_its_envelope(
        store: Store, method: str) -> None:
    # /metrics and /v1/health ask these on every scrape: a count that walks the rows reads
    # each pending envelope (its state and time come after it) and the link's whole history.
    conn = store._conn
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    getattr(store, method)(*(() if method == "counters" else ("beta",)))
    conn.set_trace_callback(None)
    for sql in (s for s in statements if "outbox" in s and "attempts" not in s):
        plans = [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        # An index alone, or one row found by its key (peer and seq): never a walk of rows.
        fine = [p for p in plans if "COVERING INDEX" in p or "(peer=? AND seq=?)" in p]
        assert fine == plans, (sql, plans)


@pytest.mark.parametrize(("method", "index"), [
    ("pending_for_doc", "COVERING INDEX outbox_doc_pending"), ("next_pending", "outbox_pending")])
def test_what_delivery_asks_per_envelope_never_walks_finished_rows(
        store: Store, method: str, index: str) -> None:
    # A walk over the outbox would read every finished envelope's row: the cost would grow
    # with the link's history (10 ms per envelope at 1,000 rows, 45 ms at 8,000, before). And
    # a count that reads the pending rows reads their envelopes to reach their state (280 ms a
    # count with 25 envelopes of 1 MiB pending): the index alone must answer it.
    conn = store._conn  # the statement the method runs, as SQLite saw it
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    getattr(store, method)(1 if method == "pending_for_doc" else "beta")
    conn.set_trace_callback(None)
    (sql,) = statements
    plans = [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert plans[0].startswith(("SEARCH outbox USING", "SEARCH o USING")) and \
        index in plans[0], plans


def test_migration_5_moves_the_bytes_of_envelopes_finished_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path, isolation_level=None)
    for script in migrate.migrations()[:SENT_VERSION - 1]:
        for statement in migrate.statements(script):
            con.execute(statement)
    con.execute(f"PRAGMA user_version = {SENT_VERSION - 1}")
    con.execute("INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, "
                "meta, created, state, updated) VALUES ('M-1', 'out', 'beta', 'manifest', "
                "x'00', x'00', x'00', 2, '{}', 1, 'sending', 1)")
    for seq, state in ((1, "delivered"), (2, "pending")):
        con.execute("INSERT INTO outbox (peer, seq, msg_id, digest, envelope, kind, doc, state, "
                    "created, receipt) VALUES ('beta', ?, x'01', x'02', ?, 'chunk', 1, ?, 1, ?)",
                    (seq, b"env-%d" % seq, state, b"r" if state == "delivered" else None))
    con.close()
    upgraded = Store(path)
    try:
        assert _raw(path, "SELECT seq, envelope FROM outbox ORDER BY seq") == [
            (1, b""), (2, b"env-2")]
        assert upgraded.envelope_bytes("beta", 1) == b"env-1"
        row = upgraded.next_pending("beta")
        assert row is not None and row.envelope == b"env-2"
    finally:
        upgraded.close()
