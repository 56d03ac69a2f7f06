"""The SQLite store: documents, items and their acknowledgement history, the outbox and inbox of
each link, refusals, events and the hash-chained audit log (``bridge/core/audit.py``).

One connection, used from one thread (the daemon's database thread). WAL mode with
``synchronous=FULL``: a commit is on disk before the API answers 202, so ``kill -9`` (or power
loss) after the answer loses nothing. Every change that belongs together is one transaction.

Schema versions are ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes version n to n + 1.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from bridge.core import audit
from bridge.core.documents import ACK_STATUSES
from bridge.core.errors import StoreError, StoreUnavailable, UsageError
from bridge.core.link import ZERO_HASH, InboundState, OutboundState
from bridge.engine import store_check
from bridge.home.files import create_private, make_private
from bridge.reports.model import DocumentCount, ItemCount, ReasonCount

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE documents (
        rowid     INTEGER PRIMARY KEY,
        id        TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        peer      TEXT NOT NULL,
        type      TEXT NOT NULL CHECK (type IN ('roster', 'manifest', 'ack')),
        digest    BLOB NOT NULL UNIQUE,
        header    BLOB NOT NULL,
        sig       BLOB NOT NULL,
        count     INTEGER NOT NULL,
        stored    INTEGER NOT NULL DEFAULT 0,   -- entries stored so far (inbound chunks)
        answers   INTEGER REFERENCES documents(rowid),  -- ack: the answered document
        meta      TEXT NOT NULL,
        created   INTEGER NOT NULL,
        state     TEXT NOT NULL,
        updated   INTEGER NOT NULL,
        UNIQUE (direction, peer, id)
    );
    CREATE INDEX documents_answers ON documents(answers);
    -- Declared items of rosters and manifests, in both directions.
    CREATE TABLE items (
        doc       INTEGER NOT NULL REFERENCES documents(rowid),
        idx       INTEGER NOT NULL,
        item_id   TEXT NOT NULL,
        leaf      BLOB NOT NULL,            -- the entry bytes as signed
        lh        BLOB NOT NULL,            -- its RFC 9162 leaf hash
        transport TEXT NOT NULL,            -- queued | sent | delivered (out), unacknowledged (in)
        status    TEXT,                     -- latest acknowledgement status
        reason    TEXT,
        evidence  TEXT,
        status_at INTEGER,
        PRIMARY KEY (doc, idx)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX items_by_id ON items(doc, item_id);
    -- Entries of acknowledgement documents: the full history of every item, never overwritten.
    CREATE TABLE ack_entries (
        ack       INTEGER NOT NULL REFERENCES documents(rowid),
        idx       INTEGER NOT NULL,
        item_doc  INTEGER NOT NULL REFERENCES documents(rowid),
        item_idx  INTEGER,                  -- NULL for RECEIVED_UNDECLARED
        item_id   TEXT NOT NULL,
        status    TEXT NOT NULL,
        reason    TEXT,
        evidence  TEXT,
        leaf      BLOB NOT NULL,
        at        INTEGER NOT NULL,
        PRIMARY KEY (ack, idx)
    ) WITHOUT ROWID;
    CREATE INDEX ack_entries_item ON ack_entries(item_doc, item_id);
    CREATE TABLE outbox (
        peer      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        msg_id    BLOB NOT NULL,
        digest    BLOB NOT NULL,
        envelope  BLOB NOT NULL,
        kind      TEXT NOT NULL,
        doc       INTEGER REFERENCES documents(rowid),
        first     INTEGER,
        n         INTEGER,
        state     TEXT NOT NULL,            -- pending | delivered | refused
        attempts  INTEGER NOT NULL DEFAULT 0,
        created   INTEGER NOT NULL,
        done_at   INTEGER,
        receipt   BLOB,
        PRIMARY KEY (peer, seq)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox(peer, state, seq);
    CREATE TABLE inbox (
        peer      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        msg_id    BLOB NOT NULL,
        digest    BLOB NOT NULL,
        header    BLOB NOT NULL,
        kind      TEXT NOT NULL,
        result    TEXT NOT NULL,            -- accepted | refused
        receipt   BLOB NOT NULL,
        at        INTEGER NOT NULL,
        PRIMARY KEY (peer, seq)
    ) WITHOUT ROWID;
    CREATE TABLE refusals (
        rowid     INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        peer      TEXT,
        seq       INTEGER,
        digest    BLOB,
        reason    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        alarm     INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        type      TEXT NOT NULL,
        data      TEXT NOT NULL
    );
    """,
    # 2: the audit log (PROTOCOL.md §11). One record per document, envelope, transport
    # receipt, refusal or key event, appended in the transaction of the change it records.
    """
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
        at        INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        peer      TEXT,
        body      BLOB NOT NULL,            -- canonical msgpack map
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );
    CREATE INDEX audit_kind ON audit(kind, peer);
    """,
    # 3: refusals no peer is accountable for are coalesced, one row per source, reason and
    # hour with a count (Store.record_refusal), so that a month of garbage cannot fill a disk.
    """
    ALTER TABLE refusals ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE refusals ADD COLUMN last_at INTEGER;
    ALTER TABLE refusals ADD COLUMN source TEXT;
    ALTER TABLE refusals ADD COLUMN bucket TEXT;
    CREATE UNIQUE INDEX refusals_bucket ON refusals(bucket);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_HOUR_MS = 3_600_000
REFUSAL_SOURCES_PER_HOUR = 64
"""Coalesced refusal rows an hour with a source of their own (per reason: the others share
``OTHER_SOURCES``). Sources are addresses, which an attacker chooses."""
OTHER_SOURCES = "other sources"


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    peer: str
    seq: int
    msg_id: bytes
    digest: bytes
    envelope: bytes
    kind: str
    doc: int | None
    first: int | None
    n: int | None
    attempts: int


@dataclass(frozen=True, kw_only=True)
class DocumentRow:
    rowid: int
    id: str
    direction: str
    peer: str
    type: str
    digest: bytes
    header: bytes
    sig: bytes
    count: int
    stored: int
    answers: int | None
    meta: dict[str, Any]
    created: int
    state: str
    updated: int


# Column names are constants of this module; values are always bound parameters.
_DOC_COLUMNS = ("rowid, id, direction, peer, type, digest, header, sig, count, stored, answers, "
                "meta, created, state, updated")


def _doc_row(r: Sequence[Any]) -> DocumentRow:
    return DocumentRow(rowid=r[0], id=r[1], direction=r[2], peer=r[3], type=r[4], digest=r[5],
                       header=r[6], sig=r[7], count=r[8], stored=r[9], answers=r[10],
                       meta=json.loads(r[11]), created=r[12], state=r[13], updated=r[14])


# Reconciliation. An item counts once per direction, peer, category and key: its id, or for a
# manifest item that names its "roster_record", that record's id. So a person on a roster and
# then in a manifest (or in a second manifest after NOT_RECEIVED) is one person, with the status
# of its highest-ranked entry: manifests above rosters, later documents above earlier ones.
#
# The one sort (GROUP BY over every entry) is kept narrow: the rank, the status and whether the
# entry reached the peer are packed into one integer, and its MAX() is the item's effective
# entry (bits 52+: is a manifest; 20-51: document rowid; 1-10: status code; 0: reached).
# The category of a roster entry is its roster's meta.category (the record schemas make every
# record's own category equal to it); a manifest entry's is its own "category" field, else its
# manifest's meta.category. A manifest entry is decoded only when its bytes hold such a field
# (the msgpack fixstr keys "category", "roster_record"); everything else is SQL. A category is
# cut to 64 characters: it is a label, not a record.
_STATUS_LIST = "|" + "|".join(ACK_STATUSES) + "|"
_STATUS_OF_CODE = {_STATUS_LIST.index(f"|{s}|") + 1: s for s in ACK_STATUSES}  # 0: none;
# 1023: a status this version does not know (reported as UNKNOWN, which counts as disputed)
_RECONCILE_ITEMS = """
WITH docs AS MATERIALIZED (
    SELECT rowid AS doc, direction || ' ' || peer AS side, type = 'manifest' AS is_manifest,
           direction = 'in' AS is_in,
           CASE WHEN json_type(meta, '$.category') = 'text'
                THEN substr(json_extract(meta, '$.category'), 1, 64) END AS category
    FROM documents WHERE type IN ('roster', 'manifest') AND (?1 IS NULL OR peer = ?1)
), per_item AS (
    SELECT d.side AS side,
           COALESCE(CASE WHEN d.is_manifest AND instr(i.leaf, X'a863617465676f7279') > 0
                         THEN substr(bridge_entry_field(i.leaf, 'category'), 1, 64) END,
                    d.category) AS category,
           MAX((d.is_manifest << 52) | (d.doc << 20)
               | (CASE WHEN i.status IS NULL THEN 0
                       ELSE COALESCE(NULLIF(instr(?2, '|' || i.status || '|'), 0), 1023) END << 1)
               | (d.is_in OR i.transport = 'delivered' OR i.status IS NOT NULL)) AS best,
           MIN(d.is_manifest) = 0 AS listed
    FROM docs d JOIN items i ON i.doc = d.doc
    GROUP BY 1, 2, CASE WHEN d.is_manifest
                             AND instr(i.leaf, X'ad726f737465725f7265636f7264') > 0
                        THEN COALESCE(bridge_entry_field(i.leaf, 'roster_record'), i.item_id)
                        ELSE i.item_id END
)
SELECT side, category, listed, best >> 52, (best >> 1) & 1023, best & 1, COUNT(*)
FROM per_item GROUP BY 1, 2, 3, 4, 5, 6
"""
# Per document: its entries by latest status. Grouped inside each document (a small sort each)
# rather than all entries at once.
_RECONCILE_DOCUMENTS = """
SELECT d.rowid, d.direction, d.peer, d.id, d.type, d.meta, d.created,
       (SELECT json_group_array(json_array(s, n)) FROM (
           SELECT status AS s, COUNT(*) AS n FROM items WHERE doc = d.rowid GROUP BY status))
FROM documents d
WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1)
ORDER BY d.rowid
"""
# The latest status of each undeclared item (acknowledgements of one document have strictly
# increasing times, so MAX(at) picks one entry).
_RECONCILE_UNDECLARED = """
SELECT item_doc, status, COUNT(*) FROM (
    SELECT a.item_doc AS item_doc, a.status AS status, MAX(a.at)
    FROM ack_entries a JOIN documents d ON d.rowid = a.item_doc
    WHERE a.item_idx IS NULL AND d.type IN ('roster', 'manifest')
          AND (?1 IS NULL OR d.peer = ?1)
    GROUP BY a.item_doc, a.item_id)
GROUP BY item_doc, status
"""
_RECONCILE_REASONS = """
SELECT d.direction, d.peer, i.status, i.reason, COUNT(*)
FROM documents d JOIN items i ON i.doc = d.rowid
WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1)
      AND i.reason IS NOT NULL AND i.reason != ''
      AND i.status IN (SELECT value FROM json_each(?2))
GROUP BY d.direction, d.peer, i.status, i.reason ORDER BY 5 DESC, 3, 4 LIMIT ?3
"""


class _EntryField:
    """``bridge_entry_field(leaf, name)``: a text field of a declared entry's record
    (PROTOCOL.md: ``{"data": {...}, ...}``), else NULL. The stored bytes were checked when
    they were stored; anything odd simply has no such field. The last entry decoded is kept:
    one query asks it for two fields in a row."""

    def __init__(self) -> None:
        self.leaf: bytes = b""
        self.data: dict[str, Any] = {}

    def __call__(self, leaf: bytes, name: str) -> str | None:
        if leaf != self.leaf:
            try:
                data = msgpack.unpackb(leaf, raw=False)["data"]
            except Exception:  # optional fields: never fail a report on one entry
                data = {}
            self.leaf, self.data = leaf, data if isinstance(data, dict) else {}
        value = self.data.get(name)
        return value if isinstance(value, str) and value else None


# SQLite primary result codes that mean "cannot write now", not "bad request" (sqlite3.h).
_SQLITE_IOERR, _SQLITE_FULL = 10, 13


def _unavailable(exc: sqlite3.OperationalError) -> StoreUnavailable | None:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _SQLITE_FULL:
        return StoreUnavailable(f"the store is full: {exc}")
    if code == _SQLITE_IOERR:
        return StoreUnavailable(f"the store cannot be written: {exc}")
    return None


def _make_store_files_private(path: Path) -> None:
    """The store holds every record in clear: 0600 before SQLite opens it. SQLite gives the
    ``-wal`` and ``-shm`` files it creates the database file's mode, so creating that file 0600
    first (rather than letting SQLite create it under the umask) makes them 0600 too; ones left
    by an older version are tightened here."""
    try:
        create_private(path)
        for suffix in ("-wal", "-shm", "-journal"):
            make_private(path.with_name(path.name + suffix))
    except (OSError, UsageError) as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc


class Store:
    """All SQL lives here. Methods are synchronous; call them from one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _make_store_files_private(path)
        try:
            self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {path}: {exc}") from exc

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the store has schema version {version}, newer than this Bridge "
                             f"({SCHEMA_VERSION}); upgrade Bridge")
        for n in range(version, SCHEMA_VERSION):
            with self.transaction():
                for statement in MIGRATIONS[n].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {n + 1}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                # SQLite may have rolled back already (a full disk does that).
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    # ------------------------------------------------------------ documents

    def insert_document(self, *, id: str, direction: str, peer: str, type: str, digest: bytes,
                        header: bytes, sig: bytes, count: int, answers: int | None,
                        meta: dict[str, Any], created: int, state: str, now: int) -> int:
        cur = self.db.execute(
            "INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, "
            "answers, meta, created, state, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (id, direction, peer, type, digest, header, sig, count, answers,
             json.dumps(meta, sort_keys=True), created, state, now))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def document_exists(self, direction: str, peer: str, doc_id: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM documents WHERE direction=? AND peer=? AND id=?",
            (direction, peer, doc_id)).fetchone() is not None

    def outbound_document(self, peer: str, doc_id: str) -> DocumentRow | None:
        r = self.db.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents "  # noqa: S608
            "WHERE direction='out' AND peer=? AND id=?", (peer, doc_id)).fetchone()
        return _doc_row(r) if r else None

    def document_by_digest(self, digest: bytes) -> DocumentRow | None:
        r = self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE digest=?",  # noqa: S608
                            (digest,)).fetchone()
        return _doc_row(r) if r else None

    def document_by_rowid(self, rowid: int) -> DocumentRow | None:
        r = self.db.execute(f"SELECT {_DOC_COLUMNS} FROM documents WHERE rowid=?",  # noqa: S608
                            (rowid,)).fetchone()
        return _doc_row(r) if r else None

    def documents_by_id(self, doc_id: str, direction: str | None = None) -> list[DocumentRow]:
        sql = f"SELECT {_DOC_COLUMNS} FROM documents WHERE id=?"  # noqa: S608
        args: list[Any] = [doc_id]
        if direction:
            sql += " AND direction=?"
            args.append(direction)
        return [_doc_row(r) for r in self.db.execute(sql, args)]

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       include_acks: bool = False, limit: int = 1000,
                       before: int | None = None) -> list[DocumentRow]:
        """Newest first; with ``before`` (a rowid), only documents older than that one."""
        sql = f"SELECT {_DOC_COLUMNS} FROM documents WHERE 1=1"  # noqa: S608
        args: list[Any] = []
        if before is not None:
            sql += " AND rowid < ?"
            args.append(before)
        for col, val in (("direction", direction), ("type", type), ("peer", peer)):
            if val:
                sql += f" AND {col}=?"
                args.append(val)
        if not include_acks and type != "ack":
            sql += " AND type != 'ack'"
        sql += " ORDER BY rowid DESC LIMIT ?"
        args.append(limit)
        return [_doc_row(r) for r in self.db.execute(sql, args)]

    def acks_of(self, doc_rowid: int) -> list[DocumentRow]:
        return [_doc_row(r) for r in self.db.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE answers=? ORDER BY created, rowid",  # noqa: S608
            (doc_rowid,))]

    def last_ack_created(self, doc_rowid: int, exclude: int | None = None) -> int | None:
        """Creation time of the latest acknowledgement of ``doc_rowid`` (receipts need them
        strictly increasing)."""
        r = self.db.execute("SELECT MAX(created) FROM documents WHERE answers=? AND rowid != ?",
                            (doc_rowid, exclude or -1)).fetchone()
        return None if r[0] is None else int(r[0])

    def documents_with_meta_key(self, key: str) -> list[DocumentRow]:
        """Documents not yet fully acknowledged whose meta has ``key``."""
        return [_doc_row(r) for r in self.db.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE state != 'acknowledged' "  # noqa: S608
            "AND json_extract(meta, '$.' || ?) IS NOT NULL", (key,))]

    def key_change_committed(self, new_key_hex: str) -> bool:
        return self.db.execute(
            "SELECT 1 FROM events WHERE type IN ('key_rotated', 'key_revoked') AND "
            "json_extract(data, '$.new_key')=? LIMIT 1", (new_key_hex,)).fetchone() is not None

    def has_event(self, type: str, doc_rowid: int) -> bool:
        return self.db.execute(
            "SELECT 1 FROM events WHERE type=? AND json_extract(data, '$.doc')=? LIMIT 1",
            (type, doc_rowid)).fetchone() is not None

    def set_document_state(self, rowid: int, state: str, now: int) -> None:
        self.db.execute("UPDATE documents SET state=?, updated=? WHERE rowid=?",
                        (state, now, rowid))

    def add_stored(self, rowid: int, n: int) -> int:
        self.db.execute("UPDATE documents SET stored = stored + ? WHERE rowid=?", (n, rowid))
        return int(self.db.execute("SELECT stored FROM documents WHERE rowid=?",
                                   (rowid,)).fetchone()[0])

    # ------------------------------------------------------------ items

    def insert_items(self, rows: Iterable[tuple[int, int, str, bytes, bytes, str]]) -> None:
        """Rows of (doc, idx, item_id, leaf, leaf hash, transport)."""
        self.db.executemany(
            "INSERT INTO items (doc, idx, item_id, leaf, lh, transport) VALUES (?,?,?,?,?,?)",
            rows)

    def set_transport(self, doc: int, first: int, n: int, transport: str) -> None:
        self.db.execute("UPDATE items SET transport=? WHERE doc=? AND idx >= ? AND idx < ?",
                        (transport, doc, first, first + n))

    def item_index(self, doc: int) -> dict[str, tuple[int, bytes]]:
        """item id -> (index, leaf hash)."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT item_id, idx, lh FROM items WHERE doc=?", (doc,))}

    def leaves(self, doc: int, first: int = 0, n: int | None = None) -> list[bytes]:
        if n is None:
            return [r[0] for r in self.db.execute(
                "SELECT leaf FROM items WHERE doc=? AND idx >= ? ORDER BY idx", (doc, first))]
        return [r[0] for r in self.db.execute(
            "SELECT leaf FROM items WHERE doc=? AND idx >= ? AND idx < ? ORDER BY idx",
            (doc, first, first + n))]

    def leaf_hashes(self, doc: int) -> list[bytes]:
        return [r[0] for r in self.db.execute(
            "SELECT lh FROM items WHERE doc=? ORDER BY idx", (doc,))]

    def update_statuses(self, rows: Iterable[tuple[str, str | None, str | None, int, int, int]]
                        ) -> None:
        """Rows of (status, reason, evidence, at, doc, idx): the latest status of each item."""
        self.db.executemany(
            "UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=? AND idx=?",
            rows)

    def set_all_statuses(self, doc: int, status: str, reason: str | None,
                         evidence: str | None, at: int) -> None:
        self.db.execute("UPDATE items SET status=?, reason=?, evidence=?, status_at=? WHERE doc=?",
                        (status, reason, evidence, at, doc))

    def current_statuses(self, doc: int) -> tuple[dict[str, str], dict[str, str]]:
        """Latest status of each acknowledged item: (declared by id, undeclared by id)."""
        declared = dict(self.db.execute(
            "SELECT item_id, status FROM items WHERE doc=? AND status IS NOT NULL", (doc,)))
        return declared, self.undeclared_statuses(doc)

    def current_statements(self, doc: int) -> dict[str, tuple[str, str | None, str | None]]:
        """What each item of ``doc`` says now, from its signed history: (status, reason,
        evidence) of its latest acknowledgement entry."""
        out: dict[str, tuple[str, str | None, str | None]] = {}
        for item_id, status, reason, evidence in self.db.execute(
                "SELECT item_id, status, reason, evidence FROM ack_entries WHERE item_doc=? "
                "ORDER BY at, ack, idx", (doc,)):
            out[item_id] = (status, reason, evidence)
        return out

    def undeclared_statuses(self, doc: int) -> dict[str, str]:
        """Latest status of each item acknowledged although ``doc`` never declared it."""
        out: dict[str, str] = {}
        for item_id, status in self.db.execute(
                "SELECT item_id, status FROM ack_entries WHERE item_doc=? AND item_idx IS NULL "
                "ORDER BY at, ack, idx", (doc,)):
            out[item_id] = status
        return out

    def statuses_at(self, doc: int, indexes: list[int]) -> dict[int, str]:
        """Latest status of the given declared items that have one."""
        return dict(self.db.execute(
            "SELECT idx, status FROM items WHERE doc=? AND status IS NOT NULL AND idx IN "
            "(SELECT value FROM json_each(?))", (doc, json.dumps(indexes))))

    def status_counts(self, doc: int) -> dict[str, int]:
        """Counts by latest status, or by transport state for items not yet acknowledged."""
        counts: dict[str, int] = {}
        for key, n in self.db.execute(
                "SELECT COALESCE(status, transport), COUNT(*) FROM items WHERE doc=? "
                "GROUP BY 1", (doc,)):
            counts[key] = n
        # Items acknowledged although never declared, by their latest status too (they may
        # move on from RECEIVED_UNDECLARED, e.g. to IDENTITY_CONFIRMED).
        for status in self.undeclared_statuses(doc).values():
            counts[status] = counts.get(status, 0) + 1
        return counts

    def acknowledged_count(self, doc: int) -> int:
        return int(self.db.execute(
            "SELECT COUNT(*) FROM items WHERE doc=? AND status IS NOT NULL",
            (doc,)).fetchone()[0])

    def items_page(self, doc: int, *, status: str | None, after: int, limit: int
                   ) -> list[tuple[Any, ...]]:
        sql = ("SELECT idx, item_id, COALESCE(status, transport), reason, evidence, status_at, "
               "leaf, lh FROM items WHERE doc=? AND idx > ?")
        args: list[Any] = [doc, after]
        if status:
            sql += " AND COALESCE(status, transport)=?"
            args.append(status)
        sql += " ORDER BY idx LIMIT ?"
        args.append(limit)
        return list(self.db.execute(sql, args))

    def item_row(self, doc: int, item_id: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.db.execute(
            "SELECT idx, item_id, COALESCE(status, transport), reason, evidence, status_at, leaf, "
            "lh FROM items WHERE doc=? AND item_id=?", (doc, item_id)).fetchone()
        return row

    # ------------------------------------------------------------ is the store what was signed?

    def check(self) -> list[store_check.StoreFault]:
        """The whole check (``bridge/engine/store_check.py``): the file, every document against its
        signed root, every status against its signed history, the audit log."""
        return store_check.check_store(self.db) + store_check.audit_faults(self.db)

    def status_mismatch(self, doc: int, first: int = 0, last: int = 1 << 62) -> str | None:
        """The first item of ``doc`` (index in [first, last]) whose status is not its signed
        history's latest, else None."""
        return store_check.status_mismatch(self.db, doc, first, last)

    def status_mismatch_any(self, peer: str | None) -> tuple[int, str] | None:
        """(document rowid, diagnosis) of the first such item in any roster or manifest."""
        for (doc,) in self.db.execute(
                "SELECT rowid FROM documents WHERE type != 'ack' AND (?1 IS NULL OR peer = ?1) "
                "ORDER BY rowid", (peer,)).fetchall():
            what = self.status_mismatch(doc)
            if what is not None:
                return doc, what
        return None

    # ------------------------------------------------------------ reconciliation

    def reconcile_items(self, peer: str | None) -> list[ItemCount]:
        """Distinct items of rosters and manifests, counted in SQL (one sort; Python only
        decodes the manifest entries whose bytes hold a ``category`` or ``roster_record``)."""
        self.db.create_function("bridge_entry_field", 2, _EntryField(), deterministic=True)
        out = []
        for side, category, listed, manifested, code, reached, n in self.db.execute(
                _RECONCILE_ITEMS, (peer, _STATUS_LIST)):
            direction, _, peer_name = side.partition(" ")
            status = None if code == 0 else _STATUS_OF_CODE.get(code, "UNKNOWN")
            out.append(ItemCount(direction=direction, peer=peer_name, category=category,
                                 listed=bool(listed), manifested=bool(manifested),
                                 reached=bool(reached), status=status, count=n))
        return out

    def reconcile_documents(self, peer: str | None) -> list[DocumentCount]:
        """Each roster and manifest with its entries counted by latest status, and the items
        acknowledged although it never declared them (by their latest status)."""
        undeclared: dict[int, dict[str, int]] = {}
        for doc, status, n in self.db.execute(_RECONCILE_UNDECLARED, (peer,)):
            undeclared.setdefault(doc, {})[status] = n
        return [DocumentCount(direction=r[1], peer=r[2], id=r[3], type=r[4],
                              meta=json.loads(r[5]), created=r[6],
                              by_status={s: n for s, n in json.loads(r[7])},
                              undeclared=undeclared.get(r[0], {}))
                for r in self.db.execute(_RECONCILE_DOCUMENTS, (peer,))]

    def reason_counts(self, peer: str | None, statuses: Sequence[str],
                      limit: int = 1000) -> list[ReasonCount]:
        """Latest reasons given with ``statuses``, most frequent first."""
        return [ReasonCount(direction=r[0], peer=r[1], status=r[2], reason=r[3], count=r[4])
                for r in self.db.execute(_RECONCILE_REASONS,
                                         (peer, json.dumps(list(statuses)), limit))]

    # ------------------------------------------------------------ acknowledgement entries

    def insert_ack_entries(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows of (ack, idx, item_doc, item_idx, item_id, status, reason, evidence, leaf, at)."""
        self.db.executemany(
            "INSERT INTO ack_entries (ack, idx, item_doc, item_idx, item_id, status, reason, "
            "evidence, leaf, at) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

    def item_history(self, doc: int, item_id: str) -> list[tuple[Any, ...]]:
        return list(self.db.execute(
            "SELECT a.status, a.reason, a.evidence, a.at, d.id FROM ack_entries a "
            "JOIN documents d ON d.rowid = a.ack WHERE a.item_doc=? AND a.item_id=? "
            "ORDER BY a.at, a.ack", (doc, item_id)))

    def ack_leaves(self, ack: int) -> list[bytes]:
        return [r[0] for r in self.db.execute(
            "SELECT leaf FROM ack_entries WHERE ack=? ORDER BY idx", (ack,))]

    # ------------------------------------------------------------ outbox

    def outbound_state(self, peer: str) -> OutboundState:
        r = self.db.execute("SELECT seq, digest FROM outbox WHERE peer=? ORDER BY seq DESC "
                            "LIMIT 1", (peer,)).fetchone()
        return OutboundState(last_seq=r[0], last_digest=r[1]) if r else OutboundState(last_seq=0)

    def insert_outbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes,
                      envelope: bytes, kind: str, doc: int | None, first: int | None,
                      n: int | None, now: int) -> None:
        self.db.execute(
            "INSERT INTO outbox (peer, seq, msg_id, digest, envelope, kind, doc, first, n, "
            "state, created) VALUES (?,?,?,?,?,?,?,?,?,'pending',?)",
            (peer, seq, msg_id, digest, envelope, kind, doc, first, n, now))

    def next_pending(self, peer: str) -> OutboxRow | None:
        r = self.db.execute(
            "SELECT peer, seq, msg_id, digest, envelope, kind, doc, first, n, attempts "
            "FROM outbox WHERE peer=? AND state='pending' ORDER BY seq LIMIT 1",
            (peer,)).fetchone()
        if r is None:
            return None
        return OutboxRow(peer=r[0], seq=r[1], msg_id=r[2], digest=r[3], envelope=r[4],
                         kind=r[5], doc=r[6], first=r[7], n=r[8], attempts=r[9])

    def count_attempt(self, peer: str, seq: int) -> None:
        self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE peer=? AND seq=?",
                        (peer, seq))

    def finish_outbox(self, peer: str, seq: int, state: str, receipt: bytes, now: int) -> None:
        self.db.execute("UPDATE outbox SET state=?, receipt=?, done_at=? WHERE peer=? AND seq=?",
                        (state, receipt, now, peer, seq))

    def rewind_outbox(self, peer: str, from_seq: int) -> int:
        cur = self.db.execute("UPDATE outbox SET state='pending' WHERE peer=? AND seq >= ? "
                              "AND state != 'pending'", (peer, from_seq))
        return cur.rowcount

    def pending_count(self, peer: str | None = None) -> int:
        if peer is None:
            return int(self.db.execute(
                "SELECT COUNT(*) FROM outbox WHERE state='pending'").fetchone()[0])
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE peer=? AND "
                                   "state='pending'", (peer,)).fetchone()[0])

    def pending_for_doc(self, doc: int) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE doc=? AND "
                                   "state='pending'", (doc,)).fetchone()[0])

    # ------------------------------------------------------------ inbox

    def inbound_state(self, peer: str) -> InboundState:
        r = self.db.execute("SELECT seq, digest FROM inbox WHERE peer=? ORDER BY seq DESC "
                            "LIMIT 1", (peer,)).fetchone()
        return InboundState(last_seq=r[0], last_digest=r[1]) if r else InboundState(last_seq=0)

    def inbox_entry(self, peer: str, seq: int) -> tuple[bytes, bytes] | None:
        r = self.db.execute("SELECT digest, receipt FROM inbox WHERE peer=? AND seq=?",
                            (peer, seq)).fetchone()
        return (r[0], r[1]) if r else None

    def insert_inbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes, header: bytes,
                     kind: str, result: str, receipt: bytes, now: int) -> None:
        self.db.execute(
            "INSERT INTO inbox (peer, seq, msg_id, digest, header, kind, result, receipt, at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (peer, seq, msg_id, digest, header, kind, result, receipt, now))

    # ------------------------------------------------------------ refusals and events

    def record_refusal(self, *, peer: str | None, seq: int | None, digest: bytes | None,
                       reason: str, detail: str, alarm: bool, now: int, count: int = 1,
                       source: str | None = None) -> bool:
        """Record ``count`` refusals. With a ``source`` (refusals no authenticated peer is
        accountable for: garbage, forgeries, requests over a limit) they are coalesced: one
        row per source, reason and hour, which keeps the first one's seq, digest and detail
        and counts the rest; past ``REFUSAL_SOURCES_PER_HOUR`` sources in an hour, the others
        share one row. So the rows an hour are bounded whatever arrives. Returns whether a
        row was added (its audit record is then due: one per row, PROTOCOL.md §11)."""
        if source is None:
            self._insert_refusal(peer, seq, digest, reason, detail, alarm, now, count, None,
                                 None)
            return True
        hour = now // _HOUR_MS
        bucket = f"{hour}|{source}|{reason}|{int(alarm)}"
        if self.db.execute("UPDATE refusals SET count = count + ?, last_at = ? WHERE bucket = ?",
                           (count, now, bucket)).rowcount:
            return False
        if source != OTHER_SOURCES and self.db.execute(
                "SELECT COUNT(*) FROM refusals WHERE bucket >= ? AND bucket < ?",
                (f"{hour}|", f"{hour}}}")).fetchone()[0] >= REFUSAL_SOURCES_PER_HOUR:
            return self.record_refusal(
                peer=peer, seq=seq, digest=digest, reason=reason, alarm=alarm, now=now,
                count=count, source=OTHER_SOURCES,
                detail=f"{detail} (more than {REFUSAL_SOURCES_PER_HOUR} sources this hour)")
        self._insert_refusal(peer, seq, digest, reason, detail, alarm, now, count, source,
                             bucket)
        return True

    def _insert_refusal(self, peer: str | None, seq: int | None, digest: bytes | None,
                        reason: str, detail: str, alarm: bool, now: int, count: int,
                        source: str | None, bucket: str | None) -> None:
        self.db.execute(
            "INSERT INTO refusals (at, peer, seq, digest, reason, detail, alarm, count, "
            "last_at, source, bucket) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (now, peer, seq, digest, reason, detail, int(alarm), count, now, source, bucket))

    def refusals(self) -> list[tuple[Any, ...]]:
        """(at, peer, seq, reason, detail, alarm, count, last_at, source), oldest first."""
        return list(self.db.execute(
            "SELECT at, peer, seq, reason, detail, alarm, count, COALESCE(last_at, at), source "
            "FROM refusals ORDER BY rowid"))

    def add_event(self, type: str, data: dict[str, Any], now: int) -> int:
        cur = self.db.execute("INSERT INTO events (at, type, data) VALUES (?,?,?)",
                              (now, type, json.dumps(data, sort_keys=True)))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def event_data(self, type: str) -> list[dict[str, Any]]:
        """The data of every event of ``type``, oldest first (for a type with few events)."""
        return [json.loads(d) for (d,) in self.db.execute(
            "SELECT data FROM events WHERE type=? ORDER BY id", (type,))]

    def events_after(self, last_id: int, limit: int = 500) -> list[tuple[int, str, str]]:
        return list(self.db.execute(
            "SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit)))

    def last_event_id(self) -> int:
        r = self.db.execute("SELECT MAX(id) FROM events").fetchone()
        return int(r[0] or 0)

    # ------------------------------------------------------------ audit log

    def append_audit(self, *, kind: str, peer: str | None, body: dict[str, Any],
                     now: int) -> audit.AuditRecord:
        """Append one record, chained to the last. Only inside the transaction of the change
        it records, so that the log and the store commit (or roll back) together."""
        if not self.db.in_transaction:
            raise StoreError("an audit record is appended inside the transaction it records")
        r = self.db.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1"
                            ).fetchone()
        rec = audit.next_record(last_seq=r[0] if r else 0,
                                last_hash=r[1] if r else audit.ZERO_HASH,
                                last_at=r[2] if r else 0, now=now, kind=kind, peer=peer,
                                body=body)
        self.db.execute("INSERT INTO audit (seq, at, kind, peer, body, prev_hash, hash) "
                        "VALUES (?,?,?,?,?,?,?)",
                        (rec.seq, rec.at, rec.kind, rec.peer, rec.body, rec.prev_hash,
                         rec.hash))
        return rec

    def audit_bodies(self, kind: str) -> list[tuple[str | None, bytes]]:
        """(peer, body) of every record of ``kind``, oldest first."""
        return list(self.db.execute("SELECT peer, body FROM audit WHERE kind=? ORDER BY seq",
                                    (kind,)))

    def counters(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "queue_depth": self.pending_count(),
            "envelopes_sent": int(q("SELECT COUNT(*) FROM outbox WHERE state != 'pending'"
                                    ).fetchone()[0]),
            "envelopes_received": int(q("SELECT COUNT(*) FROM inbox").fetchone()[0]),
            "envelopes_rejected": int(q("SELECT COALESCE(SUM(count), 0) FROM refusals"
                                        ).fetchone()[0]),
            "refusal_rows": int(q("SELECT COUNT(*) FROM refusals").fetchone()[0]),
            "retries": int(q("SELECT COALESCE(SUM(MAX(attempts - 1, 0)), 0) FROM outbox"
                             ).fetchone()[0]),
            "security_alarms": int(q("SELECT COALESCE(SUM(count), 0) FROM refusals WHERE alarm=1"
                                     ).fetchone()[0]),
        }


__all__ = ["ZERO_HASH", "DocumentRow", "OutboxRow", "Store"]
