"""The hash-chained audit log (PROTOCOL.md §11, ``bridge/core/audit.py``): appended only in
the transaction of the change it records, each record also a leaf of the log's tree (§13.1)."""

from __future__ import annotations

from typing import Any

from bridge.core import audit
from bridge.core.errors import StoreError
from bridge.core.merkle import leaf_hash
from bridge.store.sqlite.audit_tree import add_leaf
from bridge.store.sqlite.rows import Repository


class AuditLog(Repository):
    """The ``audit`` table."""

    def append_audit(self, *, kind: str, peer: str | None, body: dict[str, Any],
                     now: int) -> audit.AuditRecord:
        """Append one record, chained to the last. Only inside the transaction of the change
        it records, so that the log and the store commit (or roll back) together."""
        if not self._conn.in_transaction:
            raise StoreError("an audit record is appended inside the transaction it records")
        r = self._conn.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1"
                               ).fetchone()
        rec = audit.next_record(last_seq=r[0] if r else 0,
                                last_hash=r[1] if r else audit.ZERO_HASH,
                                last_at=r[2] if r else 0, now=now, kind=kind, peer=peer,
                                body=body)
        self._conn.execute("INSERT INTO audit (seq, at, kind, peer, body, prev_hash, hash) "
                           "VALUES (?,?,?,?,?,?,?)",
                           (rec.seq, rec.at, rec.kind, rec.peer, rec.body, rec.prev_hash,
                            rec.hash))
        # The record is also the next leaf of the log's tree (PROTOCOL.md §13.1), in the
        # same transaction: the tree and the chain never disagree.
        add_leaf(self._conn, rec.seq, leaf_hash(rec.record_bytes()))
        return rec

    def audit_bodies(self, kind: str) -> list[tuple[str | None, bytes]]:
        """(peer, body) of every record of ``kind``, oldest first."""
        return list(self._conn.execute("SELECT peer, body FROM audit WHERE kind=? ORDER BY seq",
                                       (kind,)))


__all__ = ["AuditLog"]
