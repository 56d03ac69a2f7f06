"""Is the store what was signed? The check the daemon runs at start and ``bridge audit verify``
runs on demand, over one SQLite connection (read-only or not).

What is checked, in this order (SECURITY.md, "A damaged store"):

1. ``PRAGMA quick_check``: every page of the file can be read and is well formed (a damaged
   page anywhere, not only in a table Bridge reads at start).
2. Each document against its signed header, streaming its entries in index order (memory is
   O(log n) per document, whatever its size):
   a. the stored header bytes hash to the stored digest (the digest the audit log records) and
      decode to a header whose type, id and count are the row's;
   b. entry ``i`` is at index ``i``, its leaf hash is SHA-256(0x00 || leaf) (RFC 9162 §2.1.1),
      and the columns copied out of it (item id; an acknowledgement's status, reason and
      evidence) say what the signed bytes say;
   c. an acknowledgement entry for a declared item names that item's leaf hash;
   d. all entries present: their Merkle root is the signed root (PROTOCOL.md §6).
3. Each item's latest status, as the items table reports it, is the latest entry of its signed
   acknowledgement history (``ack_entries``): one source of truth, the signed one.

Signatures are not checked here: the header hash anchors each document, and those hashes are
in the hash-chained audit log that ``bridge audit verify`` checks.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgpack

from bridge.core import audit, documents, merkle
from bridge.core.documents import DocumentHeader
from bridge.core.errors import BridgeError, StoreCorrupt
from bridge.store.sqlite import audit_db

MAX_FAULTS = 100
"""Faults reported at most: the first ones name the damage; a million more would not help."""

# SQLite's primary result codes for a damaged file (https://sqlite.org/rescode.html).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26

@dataclass(frozen=True, kw_only=True)
class StoreFault:
    """One thing in the store that is not what was signed, or cannot be read."""

    where: str  # "the file", or "out manifest M-1 (beta)"
    what: str
    doc: int | None = None  # the document's rowid, when one document is at fault

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def is_corruption(exc: BaseException) -> bool:
    """A SQLite error that says the file is damaged (not busy, locked or full)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and isinstance(code, int) and \
        code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


@contextmanager
def damage_refuses_start(db_path: object) -> Iterator[None]:
    """Around what the daemon must read from its store to start (key changes to finish, the
    keys in force): SQLite finding that damaged refuses the start with ``StoreCorrupt``, which
    says so, instead of a traceback. Damage anywhere else starts the daemon read-only with the
    alarm raised (``Exchange.check_store``)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        raise StoreCorrupt(f"the store {db_path} is damaged where the daemon reads it to start "
                           f"({exc}): see bridge audit verify, and restore it from a backup "
                           "(SECURITY.md, \"A damaged store\")") from exc


def quick_check(conn: sqlite3.Connection) -> list[StoreFault]:
    """Step 1: what ``PRAGMA quick_check`` finds (at most ``MAX_FAULTS`` lines)."""
    try:
        rows = conn.execute(f"PRAGMA quick_check({MAX_FAULTS})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [StoreFault(where="the file", what=f"quick_check failed: {exc}")]
    return [StoreFault(where="the file", what=str(r[0])) for r in rows if r[0] != "ok"]


def check_store(conn: sqlite3.Connection) -> list[StoreFault]:
    """Steps 1 to 3; the first ``MAX_FAULTS`` faults, empty when the store holds."""
    faults = quick_check(conn)
    try:
        for fault in _document_faults(conn):
            faults.append(fault)
            if len(faults) >= MAX_FAULTS:
                break
    except sqlite3.DatabaseError as exc:
        faults.append(StoreFault(where="the file", what=f"cannot be read: {exc}"))
    return faults[:MAX_FAULTS]


def audit_faults(conn: sqlite3.Connection) -> list[StoreFault]:
    """The audit log's chain, and the store against it (what ``bridge audit verify`` checks):
    the log anchors each document's hash, which step 2a anchors its rows on."""
    try:
        records = audit_db.read_audit(conn)
        chain = audit.check_chain(records)
        if not chain.ok:
            return [StoreFault(where="the audit log", what=chain.summary())]
        mismatch = audit.check_store(records, audit_db.store_facts(conn))
    except (BridgeError, sqlite3.DatabaseError) as exc:
        return [StoreFault(where="the audit log", what=f"cannot be read: {exc}")]
    return [StoreFault(where="the audit log", what=mismatch)] if mismatch else []


def _document_faults(conn: sqlite3.Connection) -> Iterator[StoreFault]:
    for rowid, doc_id, direction, peer, doc_type, digest, header, count, stored in conn.execute(
            "SELECT rowid, id, direction, peer, type, digest, header, count, stored "
            "FROM documents ORDER BY rowid").fetchall():
        where = f"{direction} {doc_type} {doc_id} ({peer})"
        what = _header_fault(digest, header, doc_type, doc_id, count)
        if what is None:
            h = DocumentHeader.from_bytes(header)
            # Outbound documents are stored whole; inbound ones chunk by chunk (``stored``).
            present = count if direction == "out" else stored
            if doc_type == documents.ACK:
                what = _ack_fault(conn, rowid, h, present)
            else:
                what = _declared_fault(conn, rowid, h, present) or status_mismatch(conn, rowid)
        if what is not None:
            yield StoreFault(where=where, what=what, doc=rowid)


def _header_fault(digest: bytes, header: bytes, doc_type: str, doc_id: str,
                  count: int) -> str | None:
    """Step 2a."""
    if not isinstance(header, bytes) or not hmac.compare_digest(
            hashlib.sha256(header).digest(), digest if isinstance(digest, bytes) else b""):
        return "the stored header does not hash to the document's digest"
    try:
        h = DocumentHeader.from_bytes(header)
    except BridgeError as exc:
        return f"the stored header cannot be read: {exc}"
    if (h.type, h.id, h.count) != (doc_type, doc_id, count):
        return "the document row does not say what its signed header says"
    return None


def _entries_fault(builder: merkle.RootBuilder, h: DocumentHeader, present: int) -> str | None:
    """Step 2d, once every stored entry has gone through ``builder``."""
    if builder.size != present:
        return f"{builder.size} entries stored where {present} should be"
    if present == h.count and not hmac.compare_digest(builder.root(), h.root):
        return "the stored entries do not match the signed Merkle root"
    return None


def _declared_fault(conn: sqlite3.Connection, doc: int, h: DocumentHeader,
                    present: int) -> str | None:
    """Steps 2b and 2d for a roster or manifest."""
    builder = merkle.RootBuilder()
    for idx, item_id, leaf, lh in conn.execute(
            "SELECT idx, item_id, leaf, lh FROM items WHERE doc=? ORDER BY idx", (doc,)):
        what = check_declared_entry(idx, item_id, leaf, lh, expect=builder.size)
        if what is not None:
            return what
        builder.add(lh)
    return _entries_fault(builder, h, present)


def check_declared_entry(idx: int, item_id: str, leaf: bytes, lh: bytes, *,
                         expect: int | None = None) -> str | None:
    """Step 2b for one stored declared entry (also run on every read that serves one)."""
    if expect is not None and idx != expect:
        return f"entry {expect} is missing (the next stored is {idx})"
    if not isinstance(leaf, bytes) or not isinstance(lh, bytes) \
            or not hmac.compare_digest(merkle.leaf_hash(leaf), lh):
        return f"entry {idx} ({item_id}) is not the entry that was signed (its leaf hash differs)"
    entry = _unpack(leaf)
    if entry.get("i") != idx or entry.get("id") != item_id:
        return f"entry {idx} is stored as item {item_id!r} but its signed bytes say " \
               f"{entry.get('id')!r} (entry {entry.get('i')!r})"
    return None


def _unpack(leaf: bytes) -> dict[str, Any]:
    """The map of an entry's bytes, {} if they are not one. Only to compare the columns copied
    out of it: its bytes are the signed ones when its leaf hash (or its document's root)
    holds, and those were decoded with every check at intake. msgpack bounds each declared
    length by the size of the bytes given, so even damaged bytes cannot make it allocate more."""
    try:
        value = msgpack.unpackb(leaf, raw=False, strict_map_key=True)
    except Exception:  # damaged bytes: whatever msgpack makes of them, they are not an entry
        return {}
    return value if isinstance(value, dict) else {}


def _ack_fault(conn: sqlite3.Connection, ack: int, h: DocumentHeader,
               present: int) -> str | None:
    """Steps 2b, 2c and 2d for an acknowledgement."""
    builder = merkle.RootBuilder()
    for idx, item_id, status, reason, evidence, leaf, declared_lh in conn.execute(
            "SELECT a.idx, a.item_id, a.status, a.reason, a.evidence, a.leaf, i.lh "
            "FROM ack_entries a LEFT JOIN items i ON i.doc = a.item_doc AND i.idx = a.item_idx "
            "WHERE a.ack=? ORDER BY a.idx", (ack,)):
        if idx != builder.size:
            return f"entry {builder.size} is missing (the next stored is {idx})"
        if not isinstance(leaf, bytes):
            return f"entry {idx} is not bytes"
        e = _unpack(leaf)
        if [e.get(k) for k in ("i", "id", "status", "reason", "evidence")] != [
                idx, item_id, status, reason, evidence]:
            return f"entry {idx} ({item_id}) is stored with a status, reason or evidence " \
                   "other than its signed bytes say"
        if e.get("leaf") != declared_lh:
            return f"entry {idx} ({item_id}) names another item than the one it is filed under"
        builder.add(merkle.leaf_hash(leaf))
    return _entries_fault(builder, h, present)


# Step 3, in SQL: the latest history entry of each declared item (by acknowledgement time,
# then acknowledgement row: as ``Store.item_history`` orders them), against what the items
# table reports. A NULL status with no history matches.
_STATUS_MISMATCH = """
SELECT i.idx, i.item_id, i.status, h.status
FROM items i LEFT JOIN ack_entries h ON (h.ack, h.idx) = (
    SELECT a.ack, a.idx FROM ack_entries a
    WHERE a.item_doc = i.doc AND a.item_id = i.item_id AND a.item_idx IS NOT NULL
    ORDER BY a.at DESC, a.ack DESC LIMIT 1)
WHERE i.doc = ?1 AND i.idx >= ?2 AND i.idx <= ?3
  AND (i.status IS NOT h.status OR i.reason IS NOT h.reason OR i.evidence IS NOT h.evidence
       OR i.status_at IS NOT h.at)
LIMIT 1
"""


def status_mismatch(conn: sqlite3.Connection, doc: int, first: int = 0,
                    last: int = (1 << 62)) -> str | None:
    """Step 3 for the items of ``doc`` with index in [first, last]: a diagnosis naming the
    first item whose reported status is not its signed history's latest, else None."""
    r = conn.execute(_STATUS_MISMATCH, (doc, first, last)).fetchone()
    if r is None:
        return None
    return (f"item {r[1]} (entry {r[0]}) is reported as {r[2] or 'not acknowledged'} but its "
            f"signed acknowledgement history says {r[3] or 'not acknowledged'}")


__all__ = ["MAX_FAULTS", "StoreFault", "audit_faults", "check_declared_entry", "check_store",
           "damage_refuses_start", "is_corruption", "quick_check", "status_mismatch"]
