"""Declared items of rosters and manifests, in both directions: the entry bytes as signed, their
leaf hash, where each is in transport and its latest acknowledgement status.

The entry bytes are kept in ``item_leaves`` under the item's key (doc, idx), apart from the
``items`` row that its transport and status changes rewrite (migration 12): every insert here
writes both, and every read of entry bytes joins them by that key."""

from __future__ import annotations

import functools
import itertools
import json
import operator
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from bridge.core.errors import StoreCorrupt, VerificationError
from bridge.store.entry_fields import entry_fields
from bridge.store.sqlite.acknowledgements import undeclared_statuses
from bridge.store.sqlite.bulk import rows_per_statement
from bridge.store.sqlite.rows import Repository

TRANSPORT_STATES = ("queued", "sent", "delivered", "unacknowledged")
"""Where an item without an acknowledgement status is: sent (out), or received (in)."""

ItemRow = tuple[int, int, str, bytes, bytes, str]
"""(doc, idx, item_id, leaf, leaf hash, transport), as the engine stores an entry."""


def _with_entry_fields(conn: sqlite3.Connection, rows: Iterable[ItemRow]
                       ) -> Iterator[tuple[Any, ...]]:
    """Each row with its manifest entry's (category, roster_record) (``entry_fields``):
    columns the reconciliation queries group by (migration 4)."""
    is_manifest: dict[int, bool] = {}
    for doc, idx, item_id, leaf, lh, transport in rows:
        if doc not in is_manifest:
            r = conn.execute("SELECT type FROM documents WHERE rowid=?", (doc,)).fetchone()
            is_manifest[doc] = r is not None and r[0] == "manifest"
        category, roster_record = entry_fields(leaf) if is_manifest[doc] else (None, None)
        yield doc, idx, item_id, leaf, lh, transport, category, roster_record


def fill_entry_fields(conn: sqlite3.Connection, batch: int = 1000) -> None:
    """Migration 4's Python step: the new columns of the manifest entries already stored, a
    batch at a time (keyset order, so memory stays bounded whatever the store holds)."""
    after = (-1, -1)
    while True:
        rows = conn.execute(
            "SELECT i.doc, i.idx, i.leaf FROM items i JOIN documents d ON d.rowid = i.doc "
            "WHERE d.type = 'manifest' AND (i.doc, i.idx) > (?, ?) "
            "ORDER BY i.doc, i.idx LIMIT ?", (*after, batch)).fetchall()
        if not rows:
            return
        fields = ((entry_fields(leaf), doc, idx) for doc, idx, leaf in rows)
        conn.executemany("UPDATE items SET category=?, roster_record=? WHERE doc=? AND idx=?",
                         [(*f, doc, idx) for f, doc, idx in fields if f != (None, None)])
        after = (rows[-1][0], rows[-1][1])


ReceivedColumns = tuple[Sequence[str], Sequence[bytes], Sequence[bytes],
                        Sequence[str | None], Sequence[str | None]]
"""(item ids, entries, leaf hashes, categories, roster records) of a received chunk."""

ROWS_PER_STATEMENT = 1000
"""Rows a statement of ``insert_received_items``: 8,000 parameters, far below SQLite's limit
of 32,766 (SQLITE_MAX_VARIABLE_NUMBER since 3.32). Measured: 256 rows gain a little less, 2,000
no more."""


# Every item of a document, walked by the primary key (doc, idx) in index order. With
# "WHERE doc=?" alone SQLite's planner walks items_by_id instead (smaller, and covering for the
# WHERE) and seeks each row from the root in item id order: for ids in no particular order, a
# page of the table at random per item, which a page cache far smaller than the table cannot
# hold. An acknowledgement of all of 1,000,000 items with shuffled ids: 21.8 s of CPU that way,
# 1.7 s this way (100,000: 0.92 s and 0.15 s). Entries are numbered from 0 (PROTOCOL.md §6.4).
_EVERY_ITEM = "doc=? AND idx >= 0"


@functools.lru_cache(maxsize=8)
def _received_statement(rows: int) -> str:
    return ("INSERT INTO items (doc, idx, item_id, lh, transport, category, roster_record) "
            "VALUES " + ",".join(["(?,?,?,?,?,?,?)"] * rows))


@functools.lru_cache(maxsize=8)
def _received_leaves_statement(rows: int) -> str:
    # The entry bytes: ?1 the document, bound once; each row its own index and bytes.
    return "INSERT INTO item_leaves (doc, idx, leaf) VALUES " + ",".join(  # noqa: S608
        f"(?1,?{2 + 2 * r},?{3 + 2 * r})" for r in range(rows))


class Items(Repository):
    """The ``items`` table, and its entries' bytes in ``item_leaves``."""

    def insert_items(self, rows: Iterable[ItemRow]) -> None:
        """Rows of (doc, idx, item_id, leaf, leaf hash, transport)."""
        self.insert_items_with_fields(_with_entry_fields(self._conn, rows))

    def insert_items_with_fields(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (doc, idx, item_id, leaf, leaf hash, transport, category, roster_record),
        the last two from the caller's decoded record (``entry_fields.record_fields``): the
        entry is not decoded a second time here. Taken ``ROWS_PER_STATEMENT`` at a time and
        stored as ``insert_received_items`` stores its columns, a statement for the rows of
        each document among them (one, but for a caller mixing documents), so memory does not
        grow with them. Measured, a 100,000-item manifest submitted whole: the rows and their
        entry bytes stored in 0.33-0.37 s of CPU, 0.57-0.60 s as an ``executemany`` each."""
        it = iter(rows)
        per = rows_per_statement(self._conn, 8, most=ROWS_PER_STATEMENT)
        while part := list(itertools.islice(it, per)):
            if set(map(len, part)) != {8}:
                raise ValueError("item rows of 8 values expected")
            for doc, same_doc in itertools.groupby(part, key=operator.itemgetter(0)):
                _, indexes, ids, leaves, hashes, transports, categories, records = zip(
                    *same_doc, strict=True)
                self._insert_rows(doc, (indexes, ids, leaves, hashes, transports, categories,
                                        records))

    def insert_received_items(self, doc: int, first: int, columns: ReceivedColumns) -> None:
        """A received chunk's items ``first, first + 1, …`` from its columns (item ids,
        entries, leaf hashes, categories, roster records, all of one length), each with no
        acknowledgement status yet (transport ``unacknowledged``).

        ``ROWS_PER_STATEMENT`` rows a statement, ``INSERT … VALUES (…), (…), …``: one step of
        one statement does for them all what ``executemany`` does once per row (bind the row
        alone, seek each of the table's three b-trees from its root), about a third less CPU
        for the same rows. The parameters are laid out column by column (a slice assignment
        each, a C loop), so no tuple is built per row. An item id the document declared
        already is the peer's fault: ``VerificationError`` (``duplicate_item``)."""
        n = len(columns[0])
        if {len(c) for c in columns} != {n}:
            raise ValueError("received item columns of different lengths")
        ids, leaves, leaf_hashes, categories, roster_records = columns
        # An SQLite built with fewer variables a statement (999 before 3.32) takes fewer rows.
        rows = rows_per_statement(self._conn, 8, most=ROWS_PER_STATEMENT)
        for start in range(0, n, rows):
            end = min(start + rows, n)
            try:
                self._insert_rows(doc, (
                    range(first + start, first + end), ids[start:end], leaves[start:end],
                    leaf_hashes[start:end], ["unacknowledged"] * (end - start),
                    categories[start:end], roster_records[start:end]))
            except sqlite3.IntegrityError as exc:
                # items_by_id: the (doc, idx) key cannot collide, as chunks are taken in
                # order of ``first``, each once (PROTOCOL.md §8.1).
                if "items.item_id" not in str(exc):
                    raise
                raise VerificationError(
                    f"an item id of entries {first + start} to {first + end - 1} is declared "
                    "by an earlier entry of the document", reason="duplicate_item") from exc

    def _insert_rows(self, doc: int, columns: Sequence[Sequence[Any]]) -> None:
        """At most ``ROWS_PER_STATEMENT`` items of ``doc`` from their columns (indexes, item
        ids, entries, leaf hashes, transports, categories, roster records): one statement for
        the rows, one for their entry bytes, the parameters laid out a column at a time."""
        indexes, ids, leaves, hashes, transports, categories, records = columns
        k = len(ids)
        params: list[Any] = [None] * (7 * k)  # the statement's columns, in its order
        params[0::7] = [doc] * k
        params[1::7] = indexes
        params[2::7] = ids
        params[3::7] = hashes
        params[4::7] = transports
        params[5::7] = categories
        params[6::7] = records
        self._conn.execute(_received_statement(k), params)
        entries: list[Any] = [None] * (1 + 2 * k)
        entries[0] = doc
        entries[1::2] = indexes
        entries[2::2] = leaves
        self._conn.execute(_received_leaves_statement(k), entries)

    def set_transport(self, doc: int, first: int, n: int, transport: str) -> None:
        self._conn.execute("UPDATE items SET transport=? WHERE doc=? AND idx >= ? AND idx < ?",
                           (transport, doc, first, first + n))

    def item_index(self, doc: int) -> dict[str, tuple[int, bytes]]:
        """item id -> (index, leaf hash)."""
        return {r[0]: (r[1], r[2]) for r in self._conn.execute(
            "SELECT item_id, idx, lh FROM items WHERE doc=?", (doc,))}

    def item_index_of(self, doc: int, item_ids: list[str]) -> dict[str, tuple[int, bytes]]:
        """item id -> (index, leaf hash) of the given ids that ``doc`` declares: one index
        lookup each (items_by_id), never a read of the whole document."""
        # CROSS JOIN fixes the order (the ids, then one items_by_id probe each): with
        # "item_id IN (...)" SQLite's planner read every item of the document and tested
        # each against the list, so a chunk cost as much as the whole document.
        return {r[0]: (r[1], r[2]) for r in self._conn.execute(
            "SELECT i.item_id, i.idx, i.lh FROM json_each(?2) j CROSS JOIN items i "
            "WHERE i.doc=?1 AND i.item_id=j.value", (doc, json.dumps(item_ids)))}

    def ack_targets(self, doc: int, item_ids: Sequence[str]
                    ) -> list[tuple[int, bytes, str | None] | None]:
        """For each of ``item_ids`` in order: (index, leaf hash, latest status) of the item
        ``doc`` declares under it, or None. One items_by_id probe each (the CROSS JOIN fixes
        the order, as in ``item_index_of``) and the status read in the same probe: a range of
        items_by_status read the statuses of every item acknowledged so far, so a received
        acknowledgement's chunks cost more the further it went."""
        run = self._ack_target_run(doc, item_ids)
        if run is not None:
            return run
        out: list[tuple[int, bytes, str | None] | None] = [None] * len(item_ids)
        for k, idx, lh, status in self._conn.execute(
                "SELECT j.key, i.idx, i.lh, i.status FROM json_each(?2) j CROSS JOIN items i "
                "WHERE i.doc=?1 AND i.item_id=j.value", (doc, json.dumps(item_ids))):
            out[k] = (idx, lh, status)
        return out

    def _ack_target_run(self, doc: int, item_ids: Sequence[str]
                        ) -> list[tuple[int, bytes, str | None] | None] | None:
        """``ack_targets`` when the ids are those of consecutive declared items in index
        order (the chunks of an acknowledgement of all items, most often): one probe for the
        first and a range of the primary key for the rest, rather than a probe each. None when
        they are not (the range holds other ids): the caller probes each."""
        if not item_ids:
            return None
        rows = self._conn.execute(
            "SELECT idx, item_id, lh, status FROM items WHERE doc=?1 AND idx >= (SELECT idx "
            "FROM items WHERE doc=?1 AND item_id=?2) ORDER BY idx LIMIT ?3",
            (doc, item_ids[0], len(item_ids))).fetchall()
        if [r[1] for r in rows] != list(item_ids):
            return None
        return [(idx, lh, status) for idx, _, lh, status in rows]

    def leaves(self, doc: int, first: int = 0, n: int | None = None) -> list[bytes]:
        """The entry bytes of ``doc``'s items ``[first, first + n)`` (to the end: n None), in
        index order. Read from the items, not from ``item_leaves`` alone: an item whose bytes
        row is missing is ``StoreCorrupt`` naming it, never a shorter list whose positions
        have moved (a retried submission compared with it would be judged by the wrong
        entries, or by none for a missing last one)."""
        # The bound in SQL (one of two constant texts), not a NULL test: the index then stops
        # at the page's end.
        upto, args = ("", (doc, first)) if n is None else (" AND i.idx < ?3",
                                                            (doc, first, first + n))
        rows = self._conn.execute(
            "SELECT i.idx, e.leaf FROM items i LEFT JOIN item_leaves e ON e.doc = i.doc AND "  # noqa: S608
            f"e.idx = i.idx WHERE i.doc = ?1 AND i.idx >= ?2{upto} ORDER BY i.idx",
            args).fetchall()
        for idx, leaf in rows:
            if leaf is None:
                raise StoreCorrupt(f"entry {idx} of a stored document: its signed bytes are "
                                   "missing from the store")
        return [leaf for _, leaf in rows]

    def iter_leaf_hashes(self, doc: int) -> Iterator[bytes]:
        """The leaf hashes of ``doc`` in index order, read as they are consumed."""
        for (lh,) in self._conn.execute("SELECT lh FROM items WHERE doc=? ORDER BY idx", (doc,)):
            yield lh

    def leaf_hashes(self, doc: int) -> list[bytes]:
        return [r[0] for r in self._conn.execute(
            "SELECT lh FROM items WHERE doc=? ORDER BY idx", (doc,))]

    def update_statuses(self, rows: Iterable[tuple[str, str | None, str | None, int, int, int]]
                        ) -> None:
        """Rows of (status, reason, evidence, at, doc, idx): the latest status of each item."""
        batch = list(rows)
        if len(batch) > 1 and len({r[:5] for r in batch}) == 1:
            # One statement for the whole batch (an acknowledgement chunk of one status): the
            # same rows changed, without a statement per item.
            self._conn.execute(
                "UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=? AND "
                "idx IN (SELECT value FROM json_each(?))",
                (*batch[0][:5], json.dumps([r[5] for r in batch])))
            return
        self._conn.executemany(
            "UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=? AND idx=?",
            batch)

    def statuses_from_ack(self, doc: int, ack: int, first: int, n: int) -> None:
        """The latest status of each declared item of ``doc`` that entries ``[first, first +
        n)`` of acknowledgement ``ack`` name, from those entries as stored (inside the caller's
        transaction, the entries inserted before): one statement, by primary key on both
        sides. The caller has refused an acknowledgement naming an item twice. (Entries of
        one statement take ``set_statuses_at``: it reads no entry back.)"""
        self._conn.execute(
            "UPDATE items SET status=a.status, reason=a.reason, evidence=a.evidence, "
            "status_at=a.at FROM ack_entries AS a WHERE a.ack=?1 AND a.idx >= ?2 AND "
            "a.idx < ?3 AND a.item_idx IS NOT NULL AND items.doc=?4 AND items.idx=a.item_idx",
            (ack, first, first + n, doc))

    def set_statuses_at(self, doc: int, indexes: Sequence[int], status: str,
                        reason: str | None, evidence: str | None, at: int) -> None:
        """One statement, the same for every item at ``indexes``, as its latest status."""
        if not indexes:
            return
        lo, hi = min(indexes), max(indexes)
        if hi - lo + 1 == len(indexes) == len(set(indexes)):
            # Every index of a range (a chunk of an acknowledgement of all items, most often):
            # the primary key's range, with no list of indexes to parse and look up.
            self._conn.execute(
                "UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=? AND "
                "idx >= ? AND idx <= ?", (status, reason, evidence, at, doc, lo, hi))
            return
        self._conn.execute(
            "UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=? AND "
            "idx IN (SELECT value FROM json_each(?))",
            (status, reason, evidence, at, doc, json.dumps(indexes)))

    def set_statuses_from_uniform_ack(self, ack: int, doc: int, status: str,
                                      reason: str | None, at: int, *, every_item: bool
                                      ) -> None:
        """The latest status of each declared item of ``doc`` that acknowledgement ``ack``
        (one status, no evidence: an acknowledgement of all items) names."""
        where = _EVERY_ITEM if every_item else (
            "doc=? AND idx IN (SELECT item_idx FROM ack_entries WHERE ack=?)")
        self._conn.execute(
            "UPDATE items SET status=?, reason=?, evidence=NULL, status_at=? "  # noqa: S608
            f"WHERE {where}", (status, reason, at, doc, *(() if every_item else (ack,))))

    def set_all_statuses(self, doc: int, status: str, reason: str | None,
                         evidence: str | None, at: int) -> None:
        self._conn.execute(
            "UPDATE items SET status=?, reason=?, evidence=?, status_at=? "  # noqa: S608
            f"WHERE {_EVERY_ITEM}",
            (status, reason, evidence, at, doc))

    def current_statuses(self, doc: int) -> tuple[dict[str, str], dict[str, str]]:
        """Latest status of each acknowledged item: (declared by id, undeclared by id)."""
        declared = dict(self._conn.execute(
            "SELECT item_id, status FROM items WHERE doc=? AND status IS NOT NULL", (doc,)))
        return declared, undeclared_statuses(self._conn, doc)

    def statements_at(self, doc: int, indexes: list[int]
                      ) -> dict[int, tuple[str, str | None, str | None]]:
        """(status, reason, evidence) now of the given declared items that have a status."""
        return {r[0]: (r[1], r[2], r[3]) for r in self._conn.execute(
            "SELECT idx, status, reason, evidence FROM items WHERE doc=? AND status IS NOT "
            "NULL AND idx IN (SELECT value FROM json_each(?))", (doc, json.dumps(indexes)))}

    def status_counts(self, doc: int) -> dict[str, int]:
        """Counts by latest status, or by transport state for items not yet acknowledged."""
        return self.item_counts(doc)[0]

    def item_counts(self, doc: int) -> tuple[dict[str, int], int]:
        """``status_counts``, and how many declared items are acknowledged, in one read."""
        counts: dict[str, int] = {}
        acknowledged = 0
        # Two ranges of items_by_status (migration 8): those with a status are counted in
        # the index alone; only those without one are read, for their transport state.
        for key, n, has_status in self._conn.execute(
                "SELECT status, COUNT(*), 1 FROM items INDEXED BY items_by_status "
                "WHERE doc=?1 AND status IS NOT NULL GROUP BY status UNION ALL "
                "SELECT transport, COUNT(*), 0 FROM items INDEXED BY items_by_status "
                "WHERE doc=?1 AND status IS NULL GROUP BY transport", (doc,)):
            counts[key] = counts.get(key, 0) + n
            acknowledged += n * has_status
        # Items acknowledged although never declared, by their latest status too (they may
        # move on from RECEIVED_UNDECLARED, e.g. to IDENTITY_CONFIRMED).
        for status in undeclared_statuses(self._conn, doc).values():
            counts[status] = counts.get(status, 0) + 1
        return counts, acknowledged

    # The items an acknowledgement of all items covers (engine/ack_all.py): those with no
    # status or one named in ``including`` (JSON list), unless they already say exactly this.
    _ACK_ALL = ("FROM items WHERE doc=? AND (status IS NULL OR status IN "
                "(SELECT value FROM json_each(?))) AND NOT (status IS ? AND reason IS ? AND "
                "evidence IS NULL)")

    def ack_all_counts(self, doc: int, including: list[str], status: str,
                       reason: str | None) -> dict[str, int]:
        """How many items an acknowledgement of all would change, by their status now."""
        if not including:
            # Then only the items with no status yet: the NULL range of items_by_status,
            # counted in the index alone (the rows, entry bytes and all, are not read).
            unacknowledged = int(self._conn.execute(
                "SELECT COUNT(*) FROM items INDEXED BY items_by_status WHERE doc=? AND "
                "status IS NULL", (doc,)).fetchone()[0])
            return {"unacknowledged": unacknowledged} if unacknowledged else {}
        return dict(self._conn.execute(
            f"SELECT COALESCE(status, 'unacknowledged'), COUNT(*) {self._ACK_ALL} "
            "GROUP BY 1", (doc, json.dumps(including), status, reason)))

    def ack_all_page(self, doc: int, including: list[str], status: str, reason: str | None,
                     after: int, limit: int) -> list[tuple[int, str, bytes, str | None]]:
        """(index, item id, leaf hash, status now) of those items, after index ``after``."""
        return list(self._conn.execute(
            f"SELECT idx, item_id, lh, status {self._ACK_ALL} AND idx > ? "
            "ORDER BY idx LIMIT ?", (doc, json.dumps(including), status, reason, after, limit)))

    def acknowledged_count(self, doc: int) -> int:
        return int(self._conn.execute(  # in items_by_status alone (migration 8)
            "SELECT COUNT(*) FROM items WHERE doc=? AND status IS NOT NULL",
            (doc,)).fetchone()[0])

    def items_page(self, doc: int, *, status: str | None, after: int, limit: int
                   ) -> list[tuple[Any, ...]]:
        """A page after index ``after``: by ``status``, a range of items_by_status (an item
        with no acknowledgement status yet is listed by its transport state)."""
        by_status = "INDEXED BY items_by_status " if status else ""
        # The entry bytes of the page's items alone, one probe each by their key (a LEFT JOIN
        # finds the page in items first, as without them). LEFT: an item whose bytes row is
        # missing is still listed, its leaf None, for the caller to name the fault: a listing
        # never hides an item.
        sql = ("SELECT i.idx, i.item_id, COALESCE(i.status, i.transport), i.reason, "  # noqa: S608
               f"i.evidence, i.status_at, e.leaf, i.lh FROM items i {by_status}LEFT JOIN "
               "item_leaves e ON e.doc = i.doc AND e.idx = i.idx WHERE i.doc=? AND i.idx > ?")
        args: list[Any] = [doc, after]
        if status in TRANSPORT_STATES:
            sql += " AND i.status IS NULL AND i.transport=?"
            args.append(status)
        elif status:
            sql += " AND i.status=?"
            args.append(status)
        sql += " ORDER BY i.idx LIMIT ?"
        args.append(limit)
        return list(self._conn.execute(sql, args))

    def item_row(self, doc: int, item_id: str) -> tuple[Any, ...] | None:
        """As a row of ``items_page``; its leaf None when the entry bytes row is missing."""
        row: tuple[Any, ...] | None = self._conn.execute(
            "SELECT i.idx, i.item_id, COALESCE(i.status, i.transport), i.reason, i.evidence, "
            "i.status_at, e.leaf, i.lh FROM items i LEFT JOIN item_leaves e ON e.doc = i.doc "
            "AND e.idx = i.idx WHERE i.doc=? AND i.item_id=?", (doc, item_id)).fetchone()
        return row


__all__ = ["ROWS_PER_STATEMENT", "TRANSPORT_STATES", "ItemRow", "Items", "ReceivedColumns",
           "fill_entry_fields"]
