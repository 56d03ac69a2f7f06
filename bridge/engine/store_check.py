"""Is the store what was signed? The check the daemon runs at start and ``bridge audit verify``
runs on demand: its logic, over the rows the store reads for it (``CheckRows`` of
``bridge/store/sqlite/check.py``, on the daemon's connection or a read-only one).

What is checked, in this order (SECURITY.md, "A damaged store"):

1. ``PRAGMA quick_check``: every page of the file can be read and is well formed (a damaged
   page anywhere, not only in a table Bridge reads at start).
2. Each document against its signed header, streaming its entries in index order (memory is
   O(log n) per document, whatever its size):
   a. the stored header bytes hash to the stored digest (the digest the audit log records) and
      decode to a header whose type, id and count are the row's;
   b. entry ``i`` is at index ``i``, its leaf hash is SHA-256(0x00 || leaf) (RFC 9162 §2.1.1),
      and the columns copied out of it (item id; a manifest entry's category and roster
      record; an acknowledgement's status, reason and evidence) say what the signed bytes say;
   c. an acknowledgement entry for a declared item names that item's leaf hash;
   d. all entries present: their Merkle root is the signed root (PROTOCOL.md §6).
3. Each item's latest status, as the items table reports it, is the latest entry of its signed
   acknowledgement history (``ack_entries``): one source of truth, the signed one.

Signatures are not checked here: the header hash anchors each document, and those hashes are
in the hash-chained audit log that ``bridge audit verify`` checks.
"""

from __future__ import annotations

import hmac
import itertools
import secrets
from collections.abc import Generator, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from bridge.core import audit, audit_tally, documents, merkle
from bridge.core.crypto.hashes import sha256
from bridge.core.documents import DocumentHeader
from bridge.core.errors import BridgeError, StoreCorrupt, StoreError
from bridge.store.entry_fields import entry_fields
from bridge.store.sqlite.check import PAGE, AckEntry, DeclaredEntry, StoredDocument
from bridge.store.sqlite.database import is_corruption

MAX_FAULTS = 100
"""Faults reported at most: the first ones name the damage; a million more would not help."""


class StoredRows(Protocol):
    """What the check reads. Each read raises ``StoreError`` when the file cannot be read."""

    def quick_check(self, limit: int) -> list[str]: ...
    def documents(self, after: int = 0, limit: int = -1) -> list[StoredDocument]: ...
    def last_document(self) -> int: ...
    def document(self, rowid: int) -> StoredDocument | None: ...
    def declared_entries(self, doc: int) -> Iterator[DeclaredEntry]: ...
    def ack_entries(self, ack: int) -> Iterator[AckEntry]: ...
    def status_mismatch(self, doc: int, first: int = 0, last: int = 1 << 62) -> str | None: ...
    def status_mismatch_since(self, doc: int, after: int, arriving: list[int]) -> str | None: ...
    def answered_since(self, after: int, arriving: list[int]) -> list[int]: ...
    def check_mark(self) -> tuple[bytes, bytes] | None: ...
    def audit_hash(self, seq: int) -> bytes | None: ...
    def audit_head(self) -> tuple[int, bytes]: ...
    def last_event(self) -> int: ...
    def alarm_since(self, event: int) -> bool: ...
    def save_check_mark(self, body: bytes, sig: bytes) -> None: ...
    def audit_records(self, since: int = 1) -> list[audit.AuditRecord]: ...
    def iter_audit_records(self, since: int = 1) -> Iterator[audit.AuditRecord]: ...
    def store_tally(self, key: bytes) -> audit_tally.Tally: ...
    def log_size(self) -> tuple[int, int]: ...
    def snapshot(self) -> AbstractContextManager[None]: ...
    def store_facts(self) -> audit.StoreFacts: ...


@dataclass(frozen=True, kw_only=True)
class StoreFault:
    """One thing in the store that is not what was signed, or cannot be read."""

    where: str  # "the file", or "out manifest M-1 (beta)"
    what: str
    doc: int | None = None  # the document's rowid, when one document is at fault

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@contextmanager
def damage_refuses_start(db_path: object) -> Iterator[None]:
    """Around what the daemon must read from its store to start (key changes to finish, the
    keys in force): SQLite finding that damaged refuses the start with ``StoreCorrupt``, which
    says so, instead of a traceback. Damage anywhere else starts the daemon read-only with the
    alarm raised (``Exchange.check_store``)."""
    try:
        yield
    except Exception as exc:
        if not is_corruption(exc):
            raise
        raise StoreCorrupt(f"the store {db_path} is damaged where the daemon reads it to start "
                           f"({exc}): see bridge audit verify, and restore it from a backup "
                           "(SECURITY.md, \"A damaged store\")") from exc


def quick_check(rows: StoredRows) -> list[StoreFault]:
    """Step 1: what ``PRAGMA quick_check`` finds (at most ``MAX_FAULTS`` lines)."""
    try:
        lines = rows.quick_check(MAX_FAULTS)
    except StoreError as exc:
        return [StoreFault(where="the file", what=f"quick_check failed: {exc}")]
    return [StoreFault(where="the file", what=line) for line in lines]


def check_store(rows: StoredRows, docs: Iterable[StoredDocument] | None = None
                ) -> list[StoreFault]:
    """Steps 1 to 3 (``docs``: every document, read a page at a time); the first
    ``MAX_FAULTS`` faults, empty when the store holds."""
    docs = itertools.chain.from_iterable(document_pages(rows)) if docs is None else docs
    return collect(itertools.chain(quick_check(rows), document_faults(rows, docs)))


DOCUMENTS_PAGE = 256
"""Document rows read at once: a check never holds them all (a hub's store may hold a
million, each with its signed header)."""


def document_pages(rows: StoredRows, upto: int | None = None) -> Iterator[list[StoredDocument]]:
    """The document rows in row order (up to row ``upto``, if given), a page at a time."""
    after = 0
    while upto is None or after < upto:
        page = [d for d in rows.documents(after=after, limit=DOCUMENTS_PAGE)
                if upto is None or d.rowid <= upto]
        if not page:
            return
        yield page
        after = page[-1].rowid


def collect(work: Iterable[StoreFault | None]) -> list[StoreFault]:
    """The first ``MAX_FAULTS`` faults of ``work`` (a check's steps, ``None`` between slices),
    with a file that cannot be read as one more."""
    faults: list[StoreFault] = []
    try:
        for fault in work:
            if fault is not None:
                faults.append(fault)
                if len(faults) >= MAX_FAULTS:
                    break
    except StoreError as exc:
        faults.append(StoreFault(where="the file", what=f"cannot be read: {exc}"))
    return faults[:MAX_FAULTS]


def audit_held(rows: StoredRows) -> audit.AuditResult | None:
    """The audit log's summary when its chain holds and it accounts for the store one for
    one, read a record and a row at a time (``bridge.core.audit_tally``); else None (read it
    whole to say what is wrong). Raises ``StoreError`` when the file cannot be read."""
    leaves, checkpoint = rows.log_size()
    return audit_tally.log_holds(rows.iter_audit_records(), rows.store_tally,
                                 secrets.token_bytes(32), leaves=leaves, checkpoint=checkpoint)


def audit_faults(rows: StoredRows) -> list[StoreFault]:
    """The audit log's chain, and the store against it (what ``bridge audit verify`` checks):
    the log anchors each document's hash, which step 2a anchors its rows on."""
    try:
        if audit_held(rows) is not None:
            return []  # read a record and a row at a time: what a sound log costs
        records = rows.audit_records()  # something is wrong: read whole, to say what
        chain = audit.check_chain(records)
        if not chain.ok:
            return [StoreFault(where="the audit log", what=chain.summary())]
        mismatch = audit.check_store(records, rows.store_facts())
    except BridgeError as exc:
        return [StoreFault(where="the audit log", what=f"cannot be read: {exc}")]
    return [StoreFault(where="the audit log", what=mismatch)] if mismatch else []


def audit_faults_since(rows: StoredRows, seq: int, head: bytes) -> list[StoreFault]:
    """The audit log after record ``seq`` (whose stored hash the caller found to be ``head``,
    the one the last complete check saw): each later record chained to it and sound, and the
    log as long as its tree and the checkpoints the party signed say. What it does not read
    (the records the mark vouched for, and the store's rows against the log) the whole check
    beside the work reads, in one snapshot (``CheckPass``)."""
    try:
        records = rows.audit_records(since=max(seq, 1))
        after = records[0] if seq and records and records[0].seq == seq else None
        if seq and (after is None or not hmac.compare_digest(after.hash, head)
                    or not hmac.compare_digest(after.computed_hash(), head)):
            return [StoreFault(where="the audit log", what=f"record {seq}, the last one the "
                               "last complete check saw, is not the one it saw")]
        chain = audit.check_chain(records[1:] if after else records, after=after)
        if not chain.ok:
            return [StoreFault(where="the audit log", what=chain.summary())]
        leaves, checkpoint = rows.log_size()
        last = records[-1].seq if records else 0
        mismatch = audit.cut_off(last, leaves=leaves, checkpoint=checkpoint)
    except BridgeError as exc:
        return [StoreFault(where="the audit log", what=f"cannot be read: {exc}")]
    return [StoreFault(where="the audit log", what=mismatch)] if mismatch else []


def check_all(rows: StoredRows, docs: Iterable[StoredDocument] | None = None
              ) -> list[StoreFault]:
    """The whole check: the file, every document (``docs``, as already read) against its
    signed root, every status against its signed history, the audit log."""
    return check_store(rows, docs) + audit_faults(rows)


Steps = Generator[None, None, str | None]
"""One document's check: ``None`` after each page of entries (where a sliced check may pause),
then its diagnosis (None: it holds)."""


def document_faults(rows: StoredRows, docs: Iterable[StoredDocument]
                    ) -> Iterator[StoreFault | None]:
    """Step 2 and 3 for each of ``docs``: its faults, with ``None`` after each page."""
    for d in docs:
        what = yield from document_steps(rows, d)
        if what is not None:
            yield StoreFault(where=document_where(d), what=what, doc=d.rowid)


def document_where(d: StoredDocument) -> str:
    """A stored document, as a fault names it."""
    return f"{d.direction} {d.type} {d.id} ({d.peer})"


def document_steps(rows: StoredRows, d: StoredDocument) -> Steps:
    what = _header_fault(d.digest, d.header, d.type, d.id, d.entry_count)
    if what is not None:
        return what
    h = DocumentHeader.from_bytes(d.header)
    # Outbound documents are stored whole; inbound ones chunk by chunk (``stored``).
    present = d.entry_count if d.direction == "out" else d.stored
    if d.type == documents.ACK:
        return (yield from _ack_steps(rows, d.rowid, h, present))
    return (yield from _declared_steps(rows, d.rowid, h, present)) \
        or (yield from _status_steps(rows, d.rowid, present))


def _status_steps(rows: StoredRows, doc: int, present: int) -> Steps:
    """Step 3, a page of items at a time."""
    for first in range(0, max(present, 1), PAGE):
        what = rows.status_mismatch(doc, first, first + PAGE - 1)
        if what is not None:
            return what
        yield None
    return None


def _header_fault(digest: bytes, header: bytes, doc_type: str, doc_id: str,
                  count: int) -> str | None:
    """Step 2a."""
    if not isinstance(header, bytes) or not hmac.compare_digest(
            sha256(header), digest if isinstance(digest, bytes) else b""):
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


def _declared_steps(rows: StoredRows, doc: int, h: DocumentHeader, present: int) -> Steps:
    """Steps 2b and 2d for a roster or manifest."""
    builder = merkle.RootBuilder()
    for e in rows.declared_entries(doc):
        what = check_declared_entry(e.idx, e.item_id, e.leaf, e.lh, expect=builder.size) \
            or _fields_fault(e, h.type)
        if what is not None:
            return what
        builder.add(e.lh)
        if builder.size % PAGE == 0:
            yield None
    return _entries_fault(builder, h, present)


def _fields_fault(e: DeclaredEntry, doc_type: str) -> str | None:
    """Step 2b for the record fields the store copies out of a manifest entry
    (``bridge/store/entry_fields.py``): the report groups by them."""
    if e.leaf is None:  # no bytes to compare with: named missing by check_declared_entry
        return None
    signed = entry_fields(e.leaf) if doc_type == "manifest" else (None, None)
    if (e.category, e.roster_record) != signed:
        return f"entry {e.idx} ({e.item_id}) is stored with a category or roster record " \
               "other than its signed bytes say"
    return None


def check_declared_entry(idx: int, item_id: str, leaf: bytes | None, lh: bytes, *,
                         expect: int | None = None) -> str | None:
    """Step 2b for one stored declared entry (also run on every read that serves one)."""
    if expect is not None and idx != expect:
        return f"entry {expect} is missing (the next stored is {idx})"
    if leaf is None:  # its item_leaves row (migration 12) is gone: a read lists it without
        return f"entry {idx} ({item_id}): its signed bytes are missing from the store"
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


def _ack_steps(rows: StoredRows, ack: int, h: DocumentHeader, present: int) -> Steps:
    """Steps 2b, 2c and 2d for an acknowledgement."""
    builder = merkle.RootBuilder()
    for a in rows.ack_entries(ack):
        if builder.size and builder.size % PAGE == 0:
            yield None
        if a.idx != builder.size:
            return f"entry {builder.size} is missing (the next stored is {a.idx})"
        if not isinstance(a.leaf, bytes):
            return f"entry {a.idx} is not bytes"
        e = _unpack(a.leaf)
        if [e.get(k) for k in ("i", "id", "status", "reason", "evidence")] != [
                a.idx, a.item_id, a.status, a.reason, a.evidence]:
            return f"entry {a.idx} ({a.item_id}) is stored with a status, reason or evidence " \
                   "other than its signed bytes say"
        if e.get("leaf") != a.declared_lh:
            return f"entry {a.idx} ({a.item_id}) names another item than the one it is filed " \
                   "under"
        builder.add(merkle.leaf_hash(a.leaf))
    return _entries_fault(builder, h, present)


__all__ = ["DOCUMENTS_PAGE", "MAX_FAULTS", "StoreFault", "StoredRows", "audit_faults",
           "audit_faults_since", "audit_held", "check_all", "check_declared_entry", "check_store",
           "collect", "damage_refuses_start", "document_faults", "document_pages", "document_where",
           "is_corruption", "quick_check"]
