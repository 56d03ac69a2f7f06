"""The rows the store check reads (``bridge/engine/store_check.py`` holds the checks' logic):
the file's own check, each document with its entries in index order, the audit log and the
facts it must account for. Over the daemon's connection or ``bridge audit``'s read-only one.

Every read through ``CheckRows`` raises ``StoreError`` (its cause the SQLite error) when the
file cannot be read: the check reports that as a fault of the file, it never fails on it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any, NamedTuple

from bridge.core import audit
from bridge.core.errors import StoreError


class StoredDocument(NamedTuple):
    rowid: int
    id: str
    direction: str
    peer: str
    type: str
    digest: bytes
    header: bytes
    entry_count: int  # the column "count": entries the signed header declares
    stored: int


class DeclaredEntry(NamedTuple):
    """A roster's or manifest's entry, with the columns copied out of its signed bytes."""

    idx: int
    item_id: str
    leaf: bytes
    lh: bytes
    category: str | None
    roster_record: str | None


class AckEntry(NamedTuple):
    """An acknowledgement's entry, and the leaf hash of the declared item it is filed under
    (None for an undeclared item)."""

    idx: int
    item_id: str
    status: str
    reason: str | None
    evidence: str | None
    leaf: bytes
    declared_lh: bytes | None


# The latest history entry of each declared item (by acknowledgement time, then
# acknowledgement row: as ``Store.item_history`` orders them), against what the items table
# reports. A NULL status with no history matches.
_STATUS_MISMATCH = """
SELECT i.idx, i.item_id, i.status, h.status
FROM items i LEFT JOIN ack_entries h ON (h.ack, h.idx) = (
    SELECT a.ack, a.idx FROM ack_entries a
    WHERE a.item_doc = i.doc AND a.item_id = i.item_id AND a.item_idx IS NOT NULL
    ORDER BY a.at DESC, a.ack DESC LIMIT 1)
WHERE i.doc = ?1 AND {which}
  AND (i.status IS NOT h.status OR i.reason IS NOT h.reason OR i.evidence IS NOT h.evidence
       OR i.status_at IS NOT h.at)
LIMIT 1
"""
_IN_RANGE = _STATUS_MISMATCH.format(which="i.idx >= ?2 AND i.idx <= ?3")
_AT = _STATUS_MISMATCH.format(which="i.idx IN (SELECT value FROM json_each(?2))")


def status_mismatch(conn: sqlite3.Connection, doc: int, first: int = 0,
                    last: int = (1 << 62), *, indexes: list[int] | None = None) -> str | None:
    """For the items of ``doc`` with index in [first, last] (or at ``indexes``): a diagnosis
    naming the first item whose reported status is not its signed history's latest, else None
    (step 3 of the check, and every read that serves a status). SQLite's errors go through as
    they are."""
    r = conn.execute(_IN_RANGE, (doc, first, last)).fetchone() if indexes is None else \
        conn.execute(_AT, (doc, json.dumps(indexes))).fetchone()
    if r is None:
        return None
    return (f"item {r[1]} (entry {r[0]}) is reported as {r[2] or 'not acknowledged'} but its "
            f"signed acknowledgement history says {r[3] or 'not acknowledged'}")


def _unreadable(exc: sqlite3.DatabaseError) -> StoreError:
    return StoreError(str(exc))


def _rows(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()
          ) -> Iterator[tuple[Any, ...]]:
    try:
        yield from conn.execute(sql, args)
    except sqlite3.DatabaseError as exc:
        raise _unreadable(exc) from exc


class CheckRows:
    """What the store check reads, row by row (memory O(1) per entry)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def quick_check(self, limit: int) -> list[str]:
        """What ``PRAGMA quick_check`` finds wrong with the file (every page read), at most
        ``limit`` lines; empty when it finds nothing."""
        try:
            rows = self._conn.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc) from exc
        return [str(r[0]) for r in rows if r[0] != "ok"]

    def documents(self) -> list[StoredDocument]:
        return [StoredDocument(*r) for r in list(_rows(
            self._conn, "SELECT rowid, id, direction, peer, type, digest, header, count, "
            "stored FROM documents ORDER BY rowid"))]

    def declared_entries(self, doc: int) -> Iterator[DeclaredEntry]:
        for r in _rows(self._conn, "SELECT idx, item_id, leaf, lh, category, roster_record "
                       "FROM items WHERE doc=? ORDER BY idx", (doc,)):
            yield DeclaredEntry(*r)

    def ack_entries(self, ack: int) -> Iterator[AckEntry]:
        for r in _rows(self._conn,
                       "SELECT a.idx, a.item_id, a.status, a.reason, a.evidence, a.leaf, i.lh "
                       "FROM ack_entries a LEFT JOIN items i "
                       "ON i.doc = a.item_doc AND i.idx = a.item_idx "
                       "WHERE a.ack=? ORDER BY a.idx", (ack,)):
            yield AckEntry(*r)

    def status_mismatch(self, doc: int) -> str | None:
        try:
            return status_mismatch(self._conn, doc)
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc) from exc

    def audit_records(self) -> list[audit.AuditRecord]:
        """Every record, in ``seq`` order, as stored (types unchecked: the verifier checks)."""
        try:
            return [audit.AuditRecord(seq=r[0], at=r[1], kind=r[2], peer=r[3], body=r[4],
                                      prev_hash=r[5], hash=r[6])
                    for r in self._conn.execute("SELECT seq, at, kind, peer, body, prev_hash, "
                                                "hash FROM audit ORDER BY seq")]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the audit log: {exc}") from exc

    def store_facts(self) -> audit.StoreFacts:
        """What the store holds that the audit log must account for (``audit.check_store``)."""
        def q(sql: str) -> Iterator[tuple[Any, ...]]:
            return _rows(self._conn, sql)
        return audit.StoreFacts(
            documents={r[0] for r in q("SELECT digest FROM documents")},
            outbox={(r[0], r[1], r[2]) for r in q("SELECT peer, seq, digest FROM outbox")},
            inbox={(r[0], r[1], r[2]) for r in q("SELECT peer, seq, digest FROM inbox")},
            receipts={(r[0], r[1]) for r in q("SELECT peer, seq FROM outbox "
                                              "WHERE receipt IS NOT NULL")},
            refusals=int(next(q("SELECT COUNT(*) FROM refusals"))[0]))


__all__ = ["AckEntry", "CheckRows", "DeclaredEntry", "StoredDocument", "status_mismatch"]
