"""Acknowledgement entries: the full signed history of every item, never overwritten (the
latest of each is copied into ``items`` for fast reads; the store check compares them)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from bridge.store.sqlite.bulk import insert_rows, insert_rows_sharing
from bridge.store.sqlite.rows import Repository


def undeclared_statuses(conn: sqlite3.Connection, doc: int) -> dict[str, str]:
    """Latest status of each item acknowledged although ``doc`` never declared it."""
    out: dict[str, str] = {}
    for item_id, status in conn.execute(
            "SELECT item_id, status FROM ack_entries INDEXED BY ack_entries_undeclared "
            "WHERE item_doc=? AND item_idx IS NULL ORDER BY at, ack, idx", (doc,)):
        out[item_id] = status
    return out


class Acknowledgements(Repository):
    """The ``ack_entries`` table."""

    def insert_ack_entries(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (ack, idx, item_doc, item_idx, item_id, status, reason, evidence, leaf, at)."""
        insert_rows(self._conn, "INSERT INTO ack_entries (ack, idx, item_doc, item_idx, "
                    "item_id, status, reason, evidence, leaf, at)", 10, rows)

    def insert_uniform_ack_entries(self, *, ack: int, doc: int, status: str,
                                   reason: str | None, evidence: str | None, at: int,
                                   rows: Iterable[tuple[int, int | None, str, bytes]]
                                   ) -> None:
        """Entries of acknowledgement ``ack`` of ``doc`` that all make one statement at one
        time: (idx, item_idx, item_id, leaf) each, the shared values bound once a statement."""
        insert_rows_sharing(
            self._conn, "INSERT INTO ack_entries (ack, idx, item_doc, item_idx, item_id, "
            "status, reason, evidence, leaf, at)", (ack, doc, status, reason, evidence, at),
            ("?1", 0, "?2", 1, 2, "?3", "?4", "?5", 3, "?6"), 4, rows)

    @contextmanager
    def entries_before_their_ack(self) -> Iterator[int]:
        """Inside the caller's transaction: the rowid the next document stored takes, so that
        an acknowledgement's entries can be stored as they are made, before the document
        itself (whose header signs their root): ``ack_entries.ack`` naming a stored document
        is checked at the transaction's commit rather than at each insert
        (https://sqlite.org/pragma.html#pragma_defer_foreign_keys), until this block ends.
        The caller stores the document inside the block and checks it took this rowid; a
        rollback takes the entries back with everything else."""
        rowid = int(self._conn.execute(
            "SELECT COALESCE(MAX(rowid), 0) + 1 FROM documents").fetchone()[0])
        self._conn.execute("PRAGMA defer_foreign_keys = ON")
        try:
            yield rowid
        finally:  # the group's other operations keep their checks at each statement
            self._conn.execute("PRAGMA defer_foreign_keys = OFF")

    def ack_leaves_range(self, ack: int, first: int, n: int) -> list[bytes]:
        """Entries ``[first, first + n)`` of acknowledgement ``ack``, in index order."""
        return [r[0] for r in self._conn.execute(
            "SELECT leaf FROM ack_entries WHERE ack=? AND idx >= ? AND idx < ? ORDER BY idx",
            (ack, first, first + n))]

    def item_history(self, doc: int, item_id: str) -> list[tuple[Any, ...]]:
        """Every entry naming ``item_id`` in ``doc``: filed under its declared index (NULL,
        the few undeclared ones, when ``doc`` does not declare it), ack_entries_declared."""
        return list(self._conn.execute(
            "SELECT a.status, a.reason, a.evidence, a.at, d.id FROM ack_entries a "
            "JOIN documents d ON d.rowid = a.ack WHERE a.item_doc=?1 AND a.item_idx IS "
            "(SELECT idx FROM items WHERE doc=?1 AND item_id=?2) AND a.item_id=?2 "
            "ORDER BY a.at, a.ack", (doc, item_id)))

    def iter_ack_leaves(self, ack: int) -> Iterator[bytes]:
        """The entries of acknowledgement ``ack`` in index order, read as they are consumed."""
        for (leaf,) in self._conn.execute(
                "SELECT leaf FROM ack_entries WHERE ack=? ORDER BY idx", (ack,)):
            yield leaf

    def item_ack_entries(self, doc: int, item_id: str) -> dict[int, tuple[int, bytes]]:
        """Acknowledgement rowid -> (index, entry) of each entry naming the declared item
        ``item_id`` of ``doc`` (ack_entries_declared, by the item's index)."""
        return {r[0]: (r[1], r[2]) for r in self._conn.execute(
            "SELECT ack, idx, leaf FROM ack_entries WHERE item_doc=?1 AND item_idx = "
            "(SELECT idx FROM items WHERE doc=?1 AND item_id=?2) AND item_id=?2",
            (doc, item_id))}

    def ack_leaves(self, ack: int) -> list[bytes]:
        return [r[0] for r in self._conn.execute(
            "SELECT leaf FROM ack_entries WHERE ack=? ORDER BY idx", (ack,))]

    def current_statements(self, doc: int) -> dict[str, tuple[str, str | None, str | None]]:
        """What each item of ``doc`` says now, from its signed history: (status, reason,
        evidence) of its latest acknowledgement entry."""
        out: dict[str, tuple[str, str | None, str | None]] = {}
        for item_id, status, reason, evidence in self._conn.execute(
                "SELECT item_id, status, reason, evidence FROM ack_entries WHERE item_doc=? "
                "ORDER BY at, ack, idx", (doc,)):
            out[item_id] = (status, reason, evidence)
        return out

    def undeclared_statements(self, doc: int) -> dict[str, tuple[str, str | None, str | None]]:
        """What each item acknowledged although ``doc`` never declared it says now."""
        out: dict[str, tuple[str, str | None, str | None]] = {}
        for item_id, status, reason, evidence in self._conn.execute(
                "SELECT item_id, status, reason, evidence FROM ack_entries INDEXED BY "
                "ack_entries_undeclared WHERE item_doc=? AND item_idx IS NULL "
                "ORDER BY at, ack, idx", (doc,)):
            out[item_id] = (status, reason, evidence)
        return out

    def undeclared_statuses(self, doc: int) -> dict[str, str]:
        """Latest status of each item acknowledged although ``doc`` never declared it."""
        return undeclared_statuses(self._conn, doc)


__all__ = ["Acknowledgements", "undeclared_statuses"]
