"""Read-only access to a home's store for ``bridge audit``: the audit log, and what a transcript
needs. Works whether or not the daemon is running (SQLite WAL readers never block the writer,
nor it them), and never writes: the connection is opened with ``mode=ro``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.core import audit, codec
from bridge.core.documents import DocumentHeader, SignedHeader
from bridge.core.errors import BridgeError, StoreError, UsageError
from bridge.core.transcript import (
    StreamedDocument,
    TranscriptDocument,
    TranscriptEnvelope,
    accountable,
)
from bridge.store.sqlite.check import CheckRows

AUDIT_SCHEMA_VERSION = 2
"""The store version that introduced the audit log (``migrations/0002_audit_log.sql``)."""

# Envelopes in the outbox are read back whole; they were sealed by this bridge within its own
# body limit, so the limits only guard against a damaged file.
_ENVELOPE_LIMITS = codec.Limits(max_bytes=256 * 1024 * 1024, max_items=1 << 20)


def connect(db_path: Path) -> sqlite3.Connection:
    """A read-only connection; ``UsageError`` when there is no store or it has no audit log."""
    if not db_path.is_file():
        raise UsageError(f"no store at {db_path} (has the daemon of this home ever run?)")
    try:
        conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True,
                               isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the store {db_path}: {exc}") from exc
    if version < AUDIT_SCHEMA_VERSION:
        conn.close()
        raise UsageError(f"the store {db_path} has schema version {version}, from before the "
                         "audit log; start the daemon once to upgrade it")
    return conn


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: everything read inside sees the same committed state, even while
    the daemon goes on writing (so the log and the store are compared at one instant)."""
    with CheckRows(conn).snapshot():
        yield conn


def check_rows(conn: sqlite3.Connection) -> CheckRows:
    """What the store check (``bridge/engine/store_check.py``) reads, on this connection."""
    return CheckRows(conn)


def read_audit(conn: sqlite3.Connection) -> list[audit.AuditRecord]:
    """Every record, in ``seq`` order, as stored (types unchecked: the verifier checks)."""
    return CheckRows(conn).audit_records()


def store_facts(conn: sqlite3.Connection) -> audit.StoreFacts:
    """What the store holds that the audit log must account for (``audit.check_store``)."""
    return CheckRows(conn).store_facts()


@dataclass(frozen=True, kw_only=True)
class TranscriptParts:
    documents: list[TranscriptDocument]
    outbound: list[TranscriptEnvelope]
    inbound: list[TranscriptEnvelope]
    pending: int  # outbound envelopes left out: not delivered yet (no receipt)
    unbound: int = 0  # inbound envelopes left out: their signature was not kept
    incomplete: list[str] = field(default_factory=list)  # documents whose entries were left out


@dataclass(frozen=True, kw_only=True)
class TranscriptSource:
    """What a transcript of the exchange with a peer holds, read as it is written: the
    documents' headers, the number of our envelopes, and the peer's envelopes (small: no
    ciphertext); the entries and our envelopes, ciphertext included, are read when their
    turn comes (``stream_transcript``), inside the read transaction that read these."""
    documents: list[StreamedDocument]
    outbound: int
    envelopes: Callable[[], Iterator[TranscriptEnvelope]] = field(repr=False)
    inbound: list[TranscriptEnvelope]
    pending: int
    unbound: int = 0
    incomplete: list[str] = field(default_factory=list)


def known_peer(conn: sqlite3.Connection, peer: str) -> bool:
    q = conn.execute
    return any(q(f"SELECT 1 FROM {table} WHERE peer=? LIMIT 1", (peer,)).fetchone()  # noqa: S608
               for table in ("documents", "outbox", "inbox"))


def transcript_source(conn: sqlite3.Connection, peer: str, *,
                      with_entries: bool) -> TranscriptSource:
    """Documents exchanged with ``peer`` (in the order this store received or made them) and
    each direction's envelopes with the recipient's signed receipt, in sequence order."""
    try:
        docs, incomplete = _documents(conn, peer, with_entries)
        delivered, pending = _outbound_counts(conn, peer)
        inbound, unbound = _inbound(conn, peer)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the store: {exc}") from exc
    # The peer's chunks as it cut them, which a hostile peer may do against the rules of
    # PROTOCOL.md §8.1: those are said to be not accounted for, never a failing transcript.
    counts = {d.signed.digest: d.signed.header.count for d in docs}
    inbound = accountable(inbound, counts)
    return TranscriptSource(documents=docs, outbound=delivered,
                            envelopes=lambda: _outbound(conn, peer), inbound=inbound,
                            pending=pending, unbound=unbound, incomplete=incomplete)


def transcript_parts(conn: sqlite3.Connection, peer: str, *,
                     with_entries: bool) -> TranscriptParts:
    """``transcript_source``, every part read whole (for ``build_transcript``)."""
    src = transcript_source(conn, peer, with_entries=with_entries)
    return TranscriptParts(
        documents=[TranscriptDocument(signed=d.signed,
                                      entries=None if d.entries is None else list(d.entries()))
                   for d in src.documents],
        outbound=list(src.envelopes()), inbound=src.inbound, pending=src.pending,
        unbound=src.unbound, incomplete=src.incomplete)


def _documents(conn: sqlite3.Connection, peer: str, with_entries: bool
               ) -> tuple[list[StreamedDocument], list[str]]:
    out, incomplete = [], []
    for rowid, doc_id, doc_type, header, sig, count in conn.execute(
            "SELECT rowid, id, type, header, sig, count FROM documents WHERE peer=? "
            "ORDER BY rowid", (peer,)).fetchall():
        signed = SignedHeader(header=DocumentHeader.from_bytes(header), data=header,
                              signature=sig)
        entries: Callable[[], Iterator[bytes]] | None = None
        if with_entries:
            table, col = ("ack_entries", "ack") if doc_type == "ack" else ("item_leaves", "doc")
            held = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {col}=?",  # noqa: S608
                                (rowid,)).fetchone()[0]
            if held != count:  # still arriving: the root cannot be checked yet
                incomplete.append(doc_id)
            else:
                entries = _entries_of(conn, table, col, rowid)
        out.append(StreamedDocument(signed=signed, entries=entries))
    return out, incomplete


def _entries_of(conn: sqlite3.Connection, table: str, col: str, rowid: int
                ) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        for (leaf,) in conn.execute(
                f"SELECT leaf FROM {table} WHERE {col}=? ORDER BY idx", (rowid,)):  # noqa: S608
            yield leaf
    return read


def _outbound_counts(conn: sqlite3.Connection, peer: str) -> tuple[int, int]:
    """Our envelopes to ``peer`` with a receipt up to the first without one, and the rest:
    delivery goes in sequence order, so from the first envelope without a receipt on,
    nothing proves delivery yet."""
    (total, first_open), = conn.execute(
        "SELECT COUNT(*), MIN(CASE WHEN receipt IS NULL THEN seq END) FROM outbox "
        "WHERE peer=?", (peer,))
    if first_open is None:
        return total, 0
    (before,), = conn.execute("SELECT COUNT(*) FROM outbox WHERE peer=? AND seq<?",
                              (peer, first_open))
    return before, total - before


def _outbound(conn: sqlite3.Connection, peer: str) -> Iterator[TranscriptEnvelope]:
    """Our envelopes to ``peer`` up to the first without a receipt, one at a time."""
    # A finished envelope's bytes are in outbox_sent (migration 5); a store this Bridge has
    # not opened yet keeps them in the outbox row.
    sent = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                        "name='outbox_sent'").fetchone() is not None
    data_sql = "COALESCE(s.envelope, o.envelope)" if sent else "o.envelope"
    join_sql = ("LEFT JOIN outbox_sent s ON s.peer = o.peer AND s.seq = o.seq " if sent
                else "")
    rows: Iterator[Any] = conn.execute(
        f"SELECT o.seq, {data_sql}, o.digest, o.receipt, d.digest, o.first, o.n "  # noqa: S608
        f"FROM outbox o {join_sql}LEFT JOIN documents d ON d.rowid = o.doc "
        "WHERE o.peer=? ORDER BY o.seq", (peer,))
    for _seq, data, digest, receipt, doc, first, n in rows:
        if receipt is None:
            return
        try:
            # Our own envelopes go in whole (ciphertext included): a verifier recomputes their
            # hash, which the peer's receipt names (PROTOCOL.md §11.4).
            env = TranscriptEnvelope.from_wire(data, receipt=receipt, doc=doc, first=first,
                                               n=n, limits=_ENVELOPE_LIMITS)
        except BridgeError as exc:
            raise StoreError(f"outbox envelope {_seq} to {peer} cannot be read: {exc}") from exc
        if env.hash != digest:
            raise StoreError(f"outbox envelope {_seq} to {peer} does not match its stored hash")
        yield env


def _inbound(conn: sqlite3.Connection, peer: str) -> tuple[list[TranscriptEnvelope], int]:
    # The inbox keeps only the header: the peer's signature over it, the ciphertext hash that
    # signature covers, and which chunk the envelope carried are in its audit record.
    received: dict[int, dict[str, Any]] = {}
    for (raw,) in conn.execute("SELECT body FROM audit WHERE kind=? AND peer=? ORDER BY seq",
                               (audit.ENVELOPE_RECEIVED, peer)):
        body = codec.decode(raw, audit.BODY_LIMITS)
        received[body["seq"]] = body
    out: list[TranscriptEnvelope] = []
    unbound = 0
    for seq, header, digest, receipt in conn.execute(
            "SELECT seq, header, digest, receipt FROM inbox WHERE peer=? ORDER BY seq",
            (peer,)):
        body = received.get(seq, {})
        if unbound or not (isinstance(body.get("sig"), bytes)
                           and isinstance(body.get("ct_hash"), bytes)):
            # Received before signatures were kept: nothing binds its header, so the
            # transcript stops before it (as at our first envelope not yet delivered).
            unbound += 1
            continue
        out.append(TranscriptEnvelope(header=header, sig=body["sig"], ct_hash=body["ct_hash"],
                                      hash=digest, receipt=receipt, doc=body.get("doc"),
                                      first=body.get("first"), n=body.get("n")))
    return out, unbound
