"""The audit log's Merkle tree (PROTOCOL.md §13.1, ``bridge/core/audit_tree.py``): its complete
subtrees, the checkpoints the party signed and the witnesses' cosignatures of them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from bridge.core import audit, codec, logtree
from bridge.core.errors import DecodeError, StoreError
from bridge.core.merkle import leaf_hash, node_hash
from bridge.store.sqlite.rows import Repository


def add_leaf(conn: sqlite3.Connection, size: int, leaf: bytes,
             frontier: dict[tuple[int, int], bytes] | None = None) -> None:
    """Write the complete subtrees that leaf ``size - 1`` (its hash ``leaf``) completes.

    ``frontier``: the right edge of the tree before this leaf, (level, index) -> hash, as the
    previous call left it (``None``: read every left sibling from the table). Each subtree
    completed here is the hash of a left sibling on that edge and the subtree just below it
    (RFC 9162 §2.1.1), so the caller that appends many leaves in order reads none back; the
    edge is brought up to date for the next leaf."""
    below = leaf
    for level, index in logtree.levels_to_store(size):
        if level:
            below = node_hash(_left_sibling(conn, level - 1, 2 * index, frontier), below)
        conn.execute("INSERT INTO audit_tree (level, idx, hash) VALUES (?,?,?)",
                     (level, index, below))
        if frontier is not None:
            frontier[(level, index)] = below
    if frontier is not None:
        # The edge of a tree of ``size`` leaves: one complete subtree per bit set in ``size``.
        keep = {(level, (size >> level) - 1) for level in range(size.bit_length())
                if size >> level & 1}
        for key in [k for k in frontier if k not in keep]:
            del frontier[key]


def _left_sibling(conn: sqlite3.Connection, level: int, index: int,
                  frontier: dict[tuple[int, int], bytes] | None) -> bytes:
    if frontier is not None and (level, index) in frontier:
        return frontier[(level, index)]
    left = conn.execute("SELECT hash FROM audit_tree WHERE level=? AND idx=?",
                        (level, index)).fetchone()
    if left is None:
        raise StoreError(f"the audit tree lacks node ({level}, {index})")
    return bytes(left[0])


def fill_audit_tree(conn: sqlite3.Connection, batch: int = 1000) -> None:
    """Migration 5's Python step: the tree of the records already logged, a batch at a time."""
    after = 0
    while True:
        rows = conn.execute("SELECT seq, at, kind, peer, body FROM audit WHERE seq > ? "
                            "ORDER BY seq LIMIT ?", (after, batch)).fetchall()
        if not rows:
            return
        for seq, at, kind, peer, body in rows:
            data = audit.record_bytes(seq=seq, at=at, kind=kind, peer=peer, body=body)
            add_leaf(conn, seq, leaf_hash(data))
        after = rows[-1][0]


@dataclass(frozen=True, kw_only=True)
class CheckpointRow:
    size: int
    root: bytes
    note: bytes
    at: int


@dataclass(frozen=True, kw_only=True)
class CosignatureRow:
    witness: str
    size: int
    timestamp: int
    line: bytes


class AuditTree(Repository):
    """The ``audit_tree``, ``checkpoints`` and ``cosignatures`` tables."""

    def audit_tree_size(self) -> int:
        r = self._conn.execute("SELECT COUNT(*) FROM audit_tree WHERE level = 0").fetchone()
        return int(r[0])

    def _node(self, level: int, index: int) -> bytes:
        r = self._conn.execute("SELECT hash FROM audit_tree WHERE level=? AND idx=?",
                               (level, index)).fetchone()
        if r is None:
            raise StoreError(f"the audit tree lacks node ({level}, {index})")
        return bytes(r[0])

    def audit_root(self, size: int) -> bytes:
        return logtree.tree_root(self._node, size)

    def audit_inclusion(self, seq: int, size: int) -> list[bytes]:
        """PATH of record ``seq`` (leaf ``seq - 1``) in the tree of ``size`` records."""
        return logtree.inclusion_proof(self._node, seq - 1, size)

    def audit_consistency(self, old: int, new: int) -> list[bytes]:
        return logtree.consistency_proof(self._node, old, new)

    def add_checkpoint(self, *, size: int, root: bytes, note: bytes, now: int) -> None:
        self._conn.execute("INSERT OR IGNORE INTO checkpoints (size, root, note, at) "
                           "VALUES (?,?,?,?)", (size, root, note, now))

    def checkpoint_at(self, size: int) -> CheckpointRow | None:
        r = self._conn.execute("SELECT size, root, note, at FROM checkpoints WHERE size=?",
                               (size,)).fetchone()
        return CheckpointRow(size=r[0], root=r[1], note=r[2], at=r[3]) if r else None

    def add_cosignature(self, *, witness: str, size: int, timestamp: int, line: bytes) -> None:
        self._conn.execute("INSERT OR IGNORE INTO cosignatures (witness, size, timestamp, line) "
                           "VALUES (?,?,?,?)", (witness, size, timestamp, line))

    def cosignatures(self, witness: str | None = None) -> list[CosignatureRow]:
        """Every cosignature kept (of one witness), oldest checkpoint first."""
        sql = "SELECT witness, size, timestamp, line FROM cosignatures"
        args: tuple[str, ...] = ()
        if witness is not None:
            sql, args = sql + " WHERE witness=?", (witness,)
        rows = self._conn.execute(sql + " ORDER BY size, witness", args).fetchall()
        return [CosignatureRow(witness=w, size=s, timestamp=t, line=x) for w, s, t, x in rows]

    def latest_clock_reading(self, witness: str) -> tuple[int, int] | None:
        """``witness``'s latest cosignature: our clock when we signed the checkpoint it
        cosigned (ms) and the witness's time in it (s); None before its first cosignature.
        The reading kept at each cosignature (``set_clock_reading``), the same size cosigned
        again included; for a store from before it, that of the largest size cosigned."""
        readings = [(int(r[0]), int(r[1])) for r in self._conn.execute(
            "SELECT ours, timestamp FROM witness_clock WHERE witness=? UNION ALL "
            "SELECT * FROM (SELECT c.at, s.timestamp FROM cosignatures s JOIN checkpoints c "
            "ON c.size = s.size WHERE s.witness=? ORDER BY s.size DESC LIMIT 1)",
            (witness, witness))]
        return max(readings, default=None)

    def set_clock_reading(self, *, witness: str, ours: int, timestamp: int) -> None:
        """A verified cosignature's reading (our signing time, ms; its time, s), kept unless a
        later one (by our clock) is kept already."""
        self._conn.execute(
            "INSERT INTO witness_clock (witness, ours, timestamp) VALUES (?,?,?) "
            "ON CONFLICT (witness) DO UPDATE SET ours = excluded.ours, "
            "timestamp = excluded.timestamp WHERE excluded.ours >= witness_clock.ours",
            (witness, ours, timestamp))

    def document_records(self, digests: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
        """digest -> (seq, record bytes) of the document and ack records of these documents."""
        out: dict[bytes, tuple[int, bytes]] = {}
        rows = self._conn.execute("SELECT seq, at, kind, peer, body FROM audit "
                                  "WHERE kind IN ('document', 'ack') ORDER BY seq")
        for seq, at, kind, peer, body in rows:
            try:
                digest = codec.decode(body, audit.BODY_LIMITS).get("digest")
            except (DecodeError, AttributeError):
                continue  # the store check names a damaged record; it proves nothing here
            if digest in digests and digest not in out:
                out[digest] = (seq, audit.record_bytes(seq=seq, at=at, kind=kind, peer=peer,
                                                       body=body))
        return out

    def covering_checkpoint(self, seq: int) -> tuple[int, bytes] | None:
        """(size, checkpoint note with every cosignature line of that size) of the smallest
        cosigned checkpoint that includes record ``seq``: the tightest witnessed bound."""
        r = self._conn.execute("SELECT MIN(size) FROM cosignatures WHERE size >= ?",
                               (seq,)).fetchone()
        if r is None or r[0] is None:
            return None
        size = int(r[0])
        cp = self.checkpoint_at(size)
        if cp is None:
            return None
        lines = [row[0] for row in self._conn.execute(
            "SELECT line FROM cosignatures WHERE size=? ORDER BY witness", (size,))]
        return size, cp.note + b"".join(lines)

    def witnessed_evidence(self, digests: set[bytes]) -> list[dict[str, object]]:
        """The ``witnessed`` entries of a receipt or transcript (PROTOCOL.md §13.5): for each
        of these documents logged here, the smallest cosigned checkpoint that includes its
        record, with the record and its inclusion proof. Empty before any cosignature."""
        out: list[dict[str, object]] = []
        for seq, record in sorted(self.document_records(digests).values()):
            covering = self.covering_checkpoint(seq)
            if covering is None:
                continue
            size, note = covering
            out.append({"checkpoint": note, "index": seq - 1,
                        "proof": self.audit_inclusion(seq, size), "record": record})
        return out

    def covering_cosignature(self, witness: str, seq: int) -> CosignatureRow | None:
        """The earliest cosigned checkpoint of ``witness`` that includes record ``seq``:
        the tightest witnessed bound on when that record was logged."""
        r = self._conn.execute("SELECT witness, size, timestamp, line FROM cosignatures "
                               "WHERE witness=? AND size >= ? ORDER BY size LIMIT 1",
                               (witness, seq)).fetchone()
        return CosignatureRow(witness=r[0], size=r[1], timestamp=r[2], line=r[3]) if r else None


__all__ = ["AuditTree", "CheckpointRow", "CosignatureRow", "add_leaf", "fill_audit_tree"]
