"""The hash-chained audit log (PROTOCOL.md §11, ``bridge/core/audit.py``): appended only in
the transaction of the change it records, each record also a leaf of the log's tree (§13.1).

The last record (what the next one chains to) and the tree's right edge (what its next leaf
is hashed with) are kept in memory between appends: an operation appends several records, and
reading them back from the table each time was a third of the log's statements. They are
trusted only while nothing could have changed them behind this connection: a rollback of any
kind forgets them (``forget_audit_tip``; ``Store.transaction`` calls it), and at the first
append of each transaction ``PRAGMA data_version`` says whether another connection committed
since (the daemon's home lock means none does, but a second ``Store`` on the file may).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.core import audit
from bridge.core.errors import StoreError
from bridge.core.merkle import leaf_hash
from bridge.store.sqlite.audit_tree import add_leaf
from bridge.store.sqlite.rows import Repository


@dataclass
class _Tip:
    """The last record as the table holds it, and the tree's right edge after it."""

    seq: int
    hash: bytes
    at: int
    data_version: int  # PRAGMA data_version when this was read: another connection's commit
    frontier: dict[tuple[int, int], bytes] = field(default_factory=dict)


class AuditLog(Repository):
    """The ``audit`` table."""

    _audit_tip: _Tip | None = None
    _audit_tip_checked = False  # checked against data_version in this transaction

    def forget_audit_tip(self) -> None:
        """Read the last record from the table again at the next append (after a rollback,
        or at a new transaction: whether another connection wrote is checked then)."""
        self._audit_tip = None

    def audit_transaction_begun(self) -> None:
        """A new top-level transaction: the cached tip is checked once before it is used."""
        self._audit_tip_checked = False

    def _tip(self) -> _Tip:
        tip, version = self._audit_tip, None
        if tip is not None and not self._audit_tip_checked:
            version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if version != tip.data_version:
                tip = None
        if tip is None:
            if version is None:
                version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            r = self._conn.execute("SELECT seq, hash, at FROM audit ORDER BY seq DESC LIMIT 1"
                                   ).fetchone()
            # The right edge is read from the table as the next leaves need it (add_leaf).
            tip = _Tip(seq=r[0], hash=r[1], at=r[2], data_version=version) if r else \
                _Tip(seq=0, hash=audit.ZERO_HASH, at=0, data_version=version)
        self._audit_tip, self._audit_tip_checked = tip, True
        return tip

    def append_audit(self, *, kind: str, peer: str | None, body: dict[str, Any],
                     now: int) -> audit.AuditRecord:
        """Append one record, chained to the last. Only inside the transaction of the change
        it records, so that the log and the store commit (or roll back) together."""
        if not self._conn.in_transaction:
            raise StoreError("an audit record is appended inside the transaction it records")
        tip = self._tip()
        rec = audit.next_record(last_seq=tip.seq, last_hash=tip.hash, last_at=tip.at, now=now,
                                kind=kind, peer=peer, body=body)
        self._audit_tip = None  # until both writes below are done
        self._conn.execute("INSERT INTO audit (seq, at, kind, peer, body, prev_hash, hash) "
                           "VALUES (?,?,?,?,?,?,?)",
                           (rec.seq, rec.at, rec.kind, rec.peer, rec.body, rec.prev_hash,
                            rec.hash))
        # The record is also the next leaf of the log's tree (PROTOCOL.md §13.1), in the
        # same transaction: the tree and the chain never disagree.
        add_leaf(self._conn, rec.seq, leaf_hash(rec.record_bytes()), tip.frontier)
        tip.seq, tip.hash, tip.at = rec.seq, rec.hash, rec.at
        self._audit_tip = tip
        return rec

    def audit_bodies(self, kind: str) -> list[tuple[str | None, bytes]]:
        """(peer, body) of every record of ``kind``, oldest first."""
        return list(self._conn.execute("SELECT peer, body FROM audit WHERE kind=? ORDER BY seq",
                                       (kind,)))


__all__ = ["AuditLog"]
