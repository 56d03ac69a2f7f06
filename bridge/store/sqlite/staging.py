"""Entries of a streamed submission, staged until the whole document is committed.

A streamed roster or manifest arrives a batch at a time; its entries wait in a TEMP table of
the store's connection (SQLite keeps it in a temporary file beside the cache, never in the
store file), one table per submission. Nothing there is visible to any query of the store, is
in the audit log or can be sent: ``publish_stage`` copies the entries into ``items`` inside the
transaction that commits the document, and a refused or abandoned submission drops its table.
A crash loses the temporary file with it: a half-streamed document leaves nothing behind.

A streamed listed acknowledgement's entries wait the same way, each made (signed bytes and
all) as its statement arrives and staged as ``ack_entries`` keeps it (``open_ack_stage``), so
that its commit copies them in one statement each (``publish_ack_stage``).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from typing import Any

from bridge.core.errors import InputError
from bridge.store.sqlite import database
from bridge.store.sqlite.bulk import insert_columns, insert_rows
from bridge.store.sqlite.rows import Repository

_STAGES = itertools.count(1)

StagedColumns = tuple[Sequence[str], Sequence[bytes], Sequence[bytes], Sequence[str | None],
                      Sequence[str | None]]
"""A batch of entries as columns, one value an entry each: (item ids, entry bytes, leaf
hashes, categories, roster records), the last two as ``items`` keeps them
(``bridge.store.entry_fields``; None for a roster's entries)."""

AckStagedRow = tuple[int, int | None, str, str, str | None, str | None, bytes]
"""(index, declared index, item id, status, reason, evidence, entry bytes): an entry of a
streamed listed acknowledgement, made as its statement arrived, as ``ack_entries`` keeps it
(None for an item never declared); only the acknowledgement it belongs to is not yet stored."""


def _table(stage: int) -> str:
    # The name is made of an integer this module chose: never of caller input.
    return f"temp.stage_{int(stage)}"


def _no_zeroing_of_temp(conn: sqlite3.Connection) -> None:
    """Dropping a stage frees its pages without first overwriting them with zeros.

    Many SQLite builds (Debian's among them) turn ``secure_delete`` on by default, and then
    ``DROP TABLE`` of a 100,000-entry stage writes zeros over every page of it: about 0.17 s
    of the database thread, in the commit of the document, for nothing. The TEMP database is
    a file SQLite deletes itself (https://sqlite.org/tempfiles.html; on Unix it is unlinked as
    soon as it is opened), readable through this connection alone; what it held is the entries
    the same transaction writes into the store file. The store file itself (``main``) keeps
    the build's setting: only ``temp`` is named
    (https://sqlite.org/pragma.html#pragma_secure_delete).
    """
    conn.execute("PRAGMA temp.secure_delete = OFF")


class Staging(Repository):
    """The TEMP ``stage_N`` tables."""

    def open_stage(self) -> int:
        """A new stage for a submission's entries; an item id staged twice is refused."""
        stage = next(_STAGES)
        _no_zeroing_of_temp(self._conn)
        self._conn.execute(
            f"CREATE TABLE {_table(stage)} (idx INTEGER PRIMARY KEY, "
            "item_id TEXT NOT NULL UNIQUE, leaf BLOB NOT NULL, lh BLOB, category TEXT, "
            "roster_record TEXT)")
        return stage

    def stage_items(self, stage: int, first: int, columns: StagedColumns) -> None:
        """Stage a batch, entries ``first``, ``first + 1``, ... of the stream; an id staged
        before (or twice in the batch) is an ``InputError`` naming the later item."""
        places = range(first, first + len(columns[0]))
        ids, leaves, hashes, categories, records = columns
        n = len(ids)
        values: tuple[Sequence[Any], ...]
        if categories.count(None) == n == records.count(None):
            # A roster's entries (no record column of their own): the two left to their
            # default, NULL, rather than bound a row at a time (a third of the insert).
            head, values = f"INSERT INTO {_table(stage)} (idx, item_id, leaf, lh)", \
                (places, ids, leaves, hashes)
        else:
            head, values = (f"INSERT INTO {_table(stage)} (idx, item_id, leaf, lh, category, "
                            "roster_record)", (places, *columns))
        try:
            with database.transaction(self._conn):  # one transaction per batch, no fsync:
                # nothing of the store file changes
                insert_columns(self._conn, head, values)
        except sqlite3.IntegrityError:
            raise self._duplicate(stage, list(zip(places, columns[0], strict=True))) from None

    def _duplicate(self, stage: int, batch: Sequence[tuple[Any, ...]]) -> InputError:
        """The first (stream index, item id, ...) of ``batch`` whose id is staged already."""
        seen: set[str] = set()
        for n, item_id, *_ in batch:
            earlier = self._conn.execute(
                f"SELECT idx FROM {_table(stage)} WHERE item_id=?",  # noqa: S608
                (item_id,)).fetchone()
            if item_id in seen or earlier is not None:
                return InputError(f"duplicate item id {item_id!r}", field=f"items[{n}].id")
            seen.add(item_id)
        return InputError("a staged item could not be stored", field="items")

    def staged_leaves(self, stage: int, first: int, n: int) -> list[bytes]:
        return [r[0] for r in self._conn.execute(
            f"SELECT leaf FROM {_table(stage)} WHERE idx >= ? AND idx < ? "  # noqa: S608
            "ORDER BY idx", (first, first + n))]

    def publish_stage(self, stage: int, doc: int, transport: str, first: int, n: int) -> None:
        """The staged entries ``[first, first + n)`` become ``doc``'s items (inside the
        caller's transaction; a chunk at a time, beside its sealing)."""
        self._conn.execute(
            "INSERT INTO items (doc, idx, item_id, lh, transport, category, "  # noqa: S608
            "roster_record) SELECT ?, idx, item_id, lh, ?, category, roster_record "
            f"FROM {_table(stage)} WHERE idx >= ? AND idx < ? ORDER BY idx",
            (doc, transport, first, first + n))
        self._conn.execute(  # their entry bytes apart (migration 12)
            "INSERT INTO item_leaves (doc, idx, leaf) SELECT ?, idx, leaf "  # noqa: S608
            f"FROM {_table(stage)} WHERE idx >= ? AND idx < ? ORDER BY idx",
            (doc, first, first + n))

    def open_ack_stage(self) -> int:
        """A new stage for a streamed listed acknowledgement's entries, shaped as
        ``ack_entries`` less what only its commit knows (the acknowledgement, its time)."""
        stage = next(_STAGES)
        _no_zeroing_of_temp(self._conn)
        self._conn.execute(
            f"CREATE TABLE {_table(stage)} (idx INTEGER PRIMARY KEY, item_idx INTEGER, "
            "item_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, reason TEXT, evidence TEXT, "
            "leaf BLOB NOT NULL)")
        return stage

    def stage_ack_entries(self, stage: int, rows: Sequence[AckStagedRow],
                          places: Sequence[int]) -> None:
        """Stage a batch of entries, ``places[n]`` the place in the stream of ``rows[n]``'s
        statement. An item staged before (or twice in the batch) is an ``InputError`` naming
        the later one by its place."""
        try:
            with database.transaction(self._conn):  # nothing of the store file changes
                insert_rows(self._conn, f"INSERT INTO {_table(stage)} (idx, item_idx, "
                            "item_id, status, reason, evidence, leaf)", 7, rows)
        except sqlite3.IntegrityError:
            raise self._duplicate(stage, [(place, row[2]) for place, row in
                                          zip(places, rows, strict=True)]) from None

    def staged_count(self, stage: int) -> int:
        return int(self._conn.execute(
            f"SELECT COUNT(*) FROM {_table(stage)}").fetchone()[0])  # noqa: S608

    def publish_ack_stage(self, stage: int, *, ack: int, doc: int, at: int) -> None:
        """The staged entries become ``ack``'s, at ``at``, and the latest statement of each
        declared item they name (inside the caller's transaction): one copy each, in SQL."""
        self._conn.execute(
            "INSERT INTO ack_entries (ack, idx, item_doc, item_idx, item_id, status, "  # noqa: S608
            "reason, evidence, leaf, at) SELECT ?, idx, ?, item_idx, item_id, status, reason, "
            f"evidence, leaf, ? FROM {_table(stage)} ORDER BY idx", (ack, doc, at))
        self._conn.execute(
            "UPDATE items SET status=s.status, reason=s.reason, evidence=s.evidence, "  # noqa: S608
            f"status_at=? FROM {_table(stage)} AS s WHERE items.doc=? AND s.item_idx IS NOT "
            "NULL AND items.idx=s.item_idx", (at, doc))

    def drop_stage(self, stage: int) -> None:
        self._conn.execute(f"DROP TABLE IF EXISTS {_table(stage)}")


__all__ = ["AckStagedRow", "StagedColumns", "Staging"]
