"""The audit log's last record and its tree's right edge kept in memory between appends
(``store/sqlite/audit_log.py``): never trusted after a rollback or a commit by another
connection, so the chain and the RFC 9162 tree stay what the records say, and kept otherwise
(the appends of one transaction read neither back from the table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.core import audit
from bridge.core.merkle import MerkleTree
from bridge.store.sqlite.store import Store

NOW = 1_700_000_000_000


def _append(store: Store, i: object) -> audit.AuditRecord:
    return store.append_audit(kind=audit.REFUSAL, peer="beta", body={"i": i}, now=NOW)


def _records(store: Store) -> list[audit.AuditRecord]:
    rows = store._conn.execute("SELECT seq, at, kind, peer, body, prev_hash, hash FROM audit "
                               "ORDER BY seq").fetchall()
    return [audit.AuditRecord(seq=s, at=a, kind=k, peer=p, body=b, prev_hash=ph, hash=h)
            for s, a, k, p, b, ph, h in rows]


def _assert_chain_and_tree_sound(store: Store) -> None:
    records = _records(store)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    assert audit.verify_chain(records).ok
    leaves = [r.record_bytes() for r in records]
    assert store.audit_tree_size() == len(records)
    for size in range(1, len(records) + 1):
        assert store.audit_root(size) == MerkleTree.from_leaves(leaves[:size]).root


class _Boom(Exception):
    pass


def test_an_operation_rolled_back_after_appending_leaves_no_stale_tip(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    try:
        with store.transaction():
            _append(store, 1)
        with pytest.raises(_Boom), store.transaction():
            _append(store, "undone")
            _append(store, "undone too")
            raise _Boom
        with store.transaction():  # chains to record 1, not to the records rolled back
            assert _append(store, 2).seq == 2
        _assert_chain_and_tree_sound(store)
    finally:
        store.close()


def test_one_operation_of_a_group_rolled_back_leaves_no_stale_tip(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    try:
        store.begin_group()
        with store.transaction():
            _append(store, 1)
        with pytest.raises(_Boom), store.transaction():  # a savepoint of the group
            for k in range(3):
                _append(store, f"undone {k}")
            raise _Boom
        with store.transaction():
            assert _append(store, 2).seq == 2
        store.commit_group()
        store.begin_group()
        with store.transaction():
            _append(store, "abandoned with its group")
        store.abandon_group()
        with store.transaction():
            assert _append(store, 3).seq == 3
        _assert_chain_and_tree_sound(store)
    finally:
        store.close()


def test_records_appended_by_another_connection_are_chained_to(tmp_path: Path) -> None:
    """A second store on the same file (the daemon's lock forbids it, a test or a tool may not
    know): its commits are seen at the next transaction, never chained over."""
    path = tmp_path / "bridge.db"
    first, second = Store(path), Store(path)
    try:
        for k in range(5):
            with first.transaction():
                _append(first, f"first {k}")
            with second.transaction():
                _append(second, f"second {k}")
                _append(second, f"second {k} again")
        _assert_chain_and_tree_sound(first)
    finally:
        first.close()
        second.close()


def test_many_appends_in_one_transaction_read_nothing_back(tmp_path: Path) -> None:
    """The tree of 37 records (every shape of right edge up to 32) equals RFC 9162's, while
    appending after the first reads neither the last record nor any tree node again."""
    store = Store(tmp_path / "bridge.db")
    reads: list[str] = []
    try:
        with store.transaction():
            _append(store, 0)
            store._conn.set_trace_callback(
                lambda sql: reads.append(sql) if sql.lstrip().upper().startswith(
                    ("SELECT", "PRAGMA")) else None)
            for k in range(1, 37):
                _append(store, k)
            store._conn.set_trace_callback(None)
        assert reads == []
        _assert_chain_and_tree_sound(store)
    finally:
        store.close()

