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
from contextlib import contextmanager, suppress
from typing import Any, NamedTuple

from bridge.core import audit, audit_tally
from bridge.core.crypto.hashes import sha256
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
    leaf: bytes | None  # None: its item_leaves row (migration 12) is missing
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
# reports. A NULL status with no history matches. The entries are found by the item's index
# (ack_entries_declared), so a range of items reads a range of that index.
_STATUS_MISMATCH = """
SELECT i.idx, i.item_id, i.status, h.status
FROM items i LEFT JOIN ack_entries h ON (h.ack, h.idx) = (
    SELECT a.ack, a.idx FROM ack_entries a
    WHERE a.item_doc = i.doc AND a.item_idx = i.idx AND a.item_id = i.item_id
    ORDER BY a.at DESC, a.ack DESC LIMIT 1)
WHERE i.doc = ?1 AND {which}
  AND (i.status IS NOT h.status OR i.reason IS NOT h.reason OR i.evidence IS NOT h.evidence
       OR i.status_at IS NOT h.at)
LIMIT 1
"""
_IN_RANGE = _STATUS_MISMATCH.format(which="i.idx >= ?2 AND i.idx <= ?3")
_AT = _STATUS_MISMATCH.format(which="i.idx IN (SELECT value FROM json_each(?2))")
# The items named by the acknowledgements stored after document ``?2``, or still arriving then
# (``?3``, a JSON array of their rows): the check at start.
_SINCE = _STATUS_MISMATCH.format(
    which="i.idx IN (SELECT a.item_idx FROM ack_entries a WHERE a.item_doc = ?1 AND "
          "(a.ack > ?2 OR a.ack IN (SELECT value FROM json_each(?3))))")

PAGE = 4096
"""Entries read per statement: a check reads a document in keyset pages, so no read
transaction stays open while it works (one would hold back the WAL's checkpoint)."""


def status_mismatch(conn: sqlite3.Connection, doc: int, first: int = 0,
                    last: int = (1 << 62), *, indexes: list[int] | None = None) -> str | None:
    """For the items of ``doc`` with index in [first, last] (or at ``indexes``): a diagnosis
    naming the first item whose reported status is not its signed history's latest, else None
    (step 3 of the check, and every read that serves a status). SQLite's errors go through as
    they are."""
    r = conn.execute(_IN_RANGE, (doc, first, last)).fetchone() if indexes is None else \
        conn.execute(_AT, (doc, json.dumps(indexes))).fetchone()
    return _mismatch(r)


def _mismatch(r: tuple[Any, ...] | None) -> str | None:
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


_DOCUMENTS = ("SELECT rowid, id, direction, peer, type, digest, header, count, stored "
              "FROM documents ")


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

    def documents(self, after: int = 0, limit: int = -1) -> list[StoredDocument]:
        """The documents whose row is after ``after``, in row order (0: all), at most
        ``limit`` of them (-1: no limit)."""
        return [StoredDocument(*r) for r in list(_rows(
            self._conn, _DOCUMENTS + "WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit)))]

    def last_document(self) -> int:
        """The last document row (0: none)."""
        return int(next(_rows(self._conn, "SELECT COALESCE(MAX(rowid), 0) FROM documents"))[0])

    def document(self, rowid: int) -> StoredDocument | None:
        """The document at ``rowid`` as it is now (None: there is none)."""
        found = list(_rows(self._conn, _DOCUMENTS + "WHERE rowid = ?", (rowid,)))
        return StoredDocument(*found[0]) if found else None

    def declared_entries(self, doc: int) -> Iterator[DeclaredEntry]:
        # An item whose entry bytes are missing (item_leaves, migration 12) is read with
        # None for them: the check names it as missing, a receipt refuses to be made of it.
        for r in self._pages("SELECT i.idx, i.item_id, e.leaf, i.lh, "
                             "i.category, i.roster_record FROM items i LEFT JOIN item_leaves e "
                             "ON e.doc = i.doc AND e.idx = i.idx WHERE i.doc=?1 AND i.idx > ?2 "
                             "ORDER BY i.idx LIMIT ?3", doc):
            yield DeclaredEntry(*r)

    def ack_entries(self, ack: int) -> Iterator[AckEntry]:
        for r in self._pages("SELECT a.idx, a.item_id, a.status, a.reason, a.evidence, a.leaf, "
                             "i.lh FROM ack_entries a LEFT JOIN items i "
                             "ON i.doc = a.item_doc AND i.idx = a.item_idx "
                             "WHERE a.ack=?1 AND a.idx > ?2 ORDER BY a.idx LIMIT ?3", ack):
            yield AckEntry(*r)

    def _pages(self, sql: str, doc: int) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` (its ``?2`` the last index read, ``?3`` the page size), a page
        per statement."""
        last = -1
        while True:
            page = list(_rows(self._conn, sql, (doc, last, PAGE)))
            yield from page
            if len(page) < PAGE:
                return
            last = page[-1][0]

    def status_mismatch(self, doc: int, first: int = 0, last: int = 1 << 62) -> str | None:
        try:
            return status_mismatch(self._conn, doc, first, last)
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc) from exc

    def status_mismatch_since(self, doc: int, after: int, arriving: list[int]) -> str | None:
        """``status_mismatch`` for the items of ``doc`` that acknowledgements stored after
        document ``after``, or still ``arriving`` then, name (what changed their status)."""
        try:
            r = self._conn.execute(_SINCE, (doc, after, json.dumps(arriving))).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _unreadable(exc) from exc
        return _mismatch(r)

    def answered_since(self, after: int, arriving: list[int]) -> list[int]:
        """The documents that acknowledgements stored after document ``after``, or still
        ``arriving`` then, answer."""
        return [int(r[0]) for r in list(_rows(
            self._conn, "SELECT DISTINCT answers FROM documents WHERE (rowid > ?1 OR rowid IN "
            "(SELECT value FROM json_each(?2))) AND type = 'ack' AND answers IS NOT NULL "
            "ORDER BY 1", (after, json.dumps(arriving))))]

    def check_mark(self) -> tuple[bytes, bytes] | None:
        """The signed mark of the last complete check (body, signature), if any."""
        found = list(_rows(self._conn, "SELECT body, sig FROM store_check_mark WHERE id = 1"))
        return (found[0][0], found[0][1]) if found else None

    def save_check_mark(self, body: bytes, sig: bytes) -> None:
        """Keep the mark of a complete check (inside the caller's transaction)."""
        self._conn.execute("INSERT INTO store_check_mark(id, body, sig) VALUES (1, ?, ?) "
                           "ON CONFLICT(id) DO UPDATE SET body = excluded.body, "
                           "sig = excluded.sig", (body, sig))

    def audit_hash(self, seq: int) -> bytes | None:
        """The hash of audit record ``seq`` (None: there is none)."""
        found = list(_rows(self._conn, "SELECT hash FROM audit WHERE seq = ?", (seq,)))
        return bytes(found[0][0]) if found and isinstance(found[0][0], bytes) else None

    def last_event(self) -> int:
        """The id of the last event (0: none)."""
        return int(next(_rows(self._conn, "SELECT COALESCE(MAX(id), 0) FROM events"))[0])

    def alarm_since(self, event: int) -> bool:
        """Whether a store_corrupt alarm was raised after event ``event``."""
        return bool(list(_rows(
            self._conn, "SELECT 1 FROM events WHERE id > ? AND type = 'security_alarm' AND "
            "json_extract(data, '$.reason') = 'store_corrupt' LIMIT 1", (event,))))

    def audit_head(self) -> tuple[int, bytes]:
        """The last audit record's seq and hash ((0, b""): an empty log)."""
        found = list(_rows(self._conn, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
        return (int(found[0][0]), bytes(found[0][1])) if found else (0, b"")

    def audit_records(self, since: int = 1) -> list[audit.AuditRecord]:
        """Every record from ``since`` on, in ``seq`` order, as stored (types unchecked: the
        verifier checks)."""
        return list(self.iter_audit_records(since))

    def iter_audit_records(self, since: int = 1) -> Iterator[audit.AuditRecord]:
        """``audit_records``, a record at a time as SQLite reads them."""
        try:
            for r in self._conn.execute("SELECT seq, at, kind, peer, body, prev_hash, hash "
                                        "FROM audit WHERE seq >= ? ORDER BY seq", (since,)):
                yield audit.AuditRecord(seq=r[0], at=r[1], kind=r[2], peer=r[3], body=r[4],
                                        prev_hash=r[5], hash=r[6])
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the audit log: {exc}") from exc

    def log_size(self) -> tuple[int, int]:
        """The leaves of the log's tree, and the largest log size the party signed a
        checkpoint of (``audit.cut_off``)."""
        def count(sql: str) -> int:
            return int(next(_rows(self._conn, sql))[0])
        return (count("SELECT COUNT(*) FROM audit_tree WHERE level = 0"),
                count("SELECT COALESCE(MAX(size), 0) FROM checkpoints"))

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside it see the file at one instant (a read transaction: in WAL mode the
        daemon goes on writing beside it), on a connection with no transaction of its own
        open; inside one, they already do."""
        if self._conn.in_transaction:
            yield
            return
        try:
            self._conn.execute("BEGIN")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read the store: {exc}") from exc
        try:
            yield
        finally:
            if self._conn.in_transaction:  # it wrote nothing: nothing to keep, nor to lose
                with suppress(sqlite3.DatabaseError):
                    self._conn.execute("ROLLBACK")

    def store_facts(self) -> audit.StoreFacts:
        """What the store holds that the audit log must account for (``audit.check_store``)."""
        def q(sql: str) -> Iterator[tuple[Any, ...]]:
            return _rows(self._conn, sql)
        # The outbox and the inbox read once each (both may hold every envelope of years),
        # a row at a time: an inbox row's receipt is hashed as it is read, never held.
        outbox, receipts = set(), set()
        for peer, seq, digest, receipted in q("SELECT peer, seq, digest, receipt IS NOT NULL "
                                              "FROM outbox"):
            outbox.add((peer, seq, digest))
            if receipted:
                receipts.add((peer, seq))
        inbox, issued = set(), {}
        leaves, checkpoint = self.log_size()
        for peer, seq, digest, receipt in q("SELECT peer, seq, digest, receipt FROM inbox"):
            inbox.add((peer, seq, digest))
            issued[(peer, seq)] = _hash_of(receipt)
        return audit.StoreFacts(
            documents={r[0] for r in q("SELECT digest FROM documents")},
            outbox=outbox, inbox=inbox, receipts=receipts,
            refusals=int(next(q("SELECT COUNT(*) FROM refusals"))[0]), issued=issued,
            leaves=leaves, checkpoint=checkpoint)


    def store_tally(self, key: bytes) -> audit_tally.Tally:
        """``store_facts`` as a tally under ``key`` (``bridge.core.audit_tally``): the same
        rows read once each, a row at a time, none of them held."""
        t = audit_tally.Tally(key)
        for (digest,) in _rows(self._conn, "SELECT digest FROM documents"):
            t.add(audit_tally.DOCUMENTS, digest)
        for peer, seq, digest, receipted in _rows(self._conn, "SELECT peer, seq, digest, "
                                                  "receipt IS NOT NULL FROM outbox"):
            t.add(audit_tally.OUTBOX, peer, seq, digest)
            if receipted:
                t.add(audit_tally.RECEIPTS, peer, seq)
        for peer, seq, digest, receipt in _rows(self._conn, "SELECT peer, seq, digest, receipt "
                                                "FROM inbox"):
            t.add(audit_tally.INBOX, peer, seq, digest)
            t.add(audit_tally.ISSUED, peer, seq, _hash_of(receipt))
        refusals = int(next(_rows(self._conn, "SELECT COUNT(*) FROM refusals"))[0])
        t.add_copies(refusals, audit_tally.REFUSALS)
        return t


def _hash_of(value: object) -> bytes:
    """SHA-256 of a stored blob; of its text when it is no blob (a row rewritten behind the
    daemon's back: the comparison with the log then names it, instead of a crash)."""
    return sha256(value if isinstance(value, bytes) else repr(value).encode())


__all__ = ["AckEntry", "CheckRows", "DeclaredEntry", "StoredDocument", "status_mismatch"]
