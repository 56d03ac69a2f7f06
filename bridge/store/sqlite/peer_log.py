"""Witnessed checkpoints exchanged with each peer (PROTOCOL.md §13.7, migration 7): what we sent
each peer, the peer's checkpoints and records we accepted, and the split views we caught."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core import audit
from bridge.core.merkle import HASH_SIZE
from bridge.store.sqlite.rows import Repository


@dataclass(frozen=True, kw_only=True)
class SentCheckpoint:
    """The last checkpoint envelope queued to a peer, and the last one it accepted."""

    peer: str
    envelope_seq: int
    size: int
    records_to: int
    accepted_size: int
    accepted_records_to: int
    at: int


@dataclass(frozen=True, kw_only=True)
class PeerCheckpointRow:
    size: int
    root: bytes
    note: bytes


@dataclass(frozen=True, kw_only=True)
class PeerRecord:
    """One of the peer's audit records about us, proven in its checkpoint of ``size``."""

    index: int
    size: int
    digest: bytes
    record: bytes
    proof: tuple[bytes, ...]


def _split(blob: bytes) -> list[bytes]:
    return [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]


class PeerLog(Repository):
    """The ``checkpoints_sent``, ``peer_checkpoints``, ``peer_log_records`` and
    ``peer_log_conflicts`` tables."""

    # ------------------------------------------------------------ what we send

    def checkpoint_sent(self, peer: str) -> SentCheckpoint | None:
        r = self._conn.execute("SELECT peer, envelope_seq, size, records_to, accepted_size, "
                               "accepted_records_to, at FROM checkpoints_sent WHERE peer=?",
                               (peer,)).fetchone()
        return SentCheckpoint(peer=r[0], envelope_seq=r[1], size=r[2], records_to=r[3],
                              accepted_size=r[4], accepted_records_to=r[5], at=r[6]) \
            if r else None

    def set_checkpoint_sent(self, row: SentCheckpoint) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO checkpoints_sent (peer, envelope_seq, size, records_to, "
            "accepted_size, accepted_records_to, at) VALUES (?,?,?,?,?,?,?)",
            (row.peer, row.envelope_seq, row.size, row.records_to, row.accepted_size,
             row.accepted_records_to, row.at))

    def outbox_result(self, peer: str, seq: int) -> tuple[str, str | None] | None:
        """(state, the refusal's reason) of our envelope ``seq`` to ``peer``."""
        r = self._conn.execute(
            "SELECT o.state, (SELECT reason FROM refusals f WHERE f.peer = o.peer AND "
            "f.digest = o.digest ORDER BY f.rowid LIMIT 1) FROM outbox o "
            "WHERE o.peer=? AND o.seq=?", (peer, seq)).fetchone()
        return (str(r[0]), r[1]) if r else None

    def largest_cosigned(self) -> tuple[int, bytes] | None:
        """(size, our checkpoint note with every cosignature line of that size) of the
        largest checkpoint of our log any pinned witness cosigned."""
        r = self._conn.execute("SELECT MAX(size) FROM cosignatures").fetchone()
        if r is None or r[0] is None:
            return None
        size = int(r[0])
        cp = self._conn.execute("SELECT note FROM checkpoints WHERE size=?", (size,)).fetchone()
        if cp is None:
            return None
        lines = [row[0] for row in self._conn.execute(
            "SELECT line FROM cosignatures WHERE size=? ORDER BY witness", (size,))]
        return size, bytes(cp[0]) + b"".join(lines)

    def records_about(self, peer: str, after: int, upto: int, limit: int
                      ) -> list[tuple[int, bytes]]:
        """(seq, record bytes) of our document and ack records about ``peer`` with seq in
        (after, upto], oldest first."""
        rows = self._conn.execute(
            "SELECT seq, at, kind, peer, body FROM audit WHERE seq > ? AND seq <= ? AND "
            "peer = ? AND kind IN ('document', 'ack') ORDER BY seq LIMIT ?",
            (after, upto, peer, limit)).fetchall()
        return [(seq, audit.record_bytes(seq=seq, at=at, kind=kind, peer=p, body=body))
                for seq, at, kind, p, body in rows]

    # ------------------------------------------------------------ what the peer sent us

    def last_peer_checkpoint(self, peer: str, origin: str) -> PeerCheckpointRow | None:
        r = self._conn.execute("SELECT size, root, note FROM peer_checkpoints WHERE peer=? AND "
                               "origin=? ORDER BY size DESC LIMIT 1", (peer, origin)).fetchone()
        return PeerCheckpointRow(size=r[0], root=r[1], note=r[2]) if r else None

    def add_peer_checkpoint(self, *, peer: str, origin: str, size: int, root: bytes,
                            note: bytes, witnessed_by: list[str], now: int) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO peer_checkpoints (peer, origin, size, root, note, "
            "witnessed_by, at) VALUES (?,?,?,?,?,?,?)",
            (peer, origin, size, root, note, " ".join(witnessed_by), now))

    def add_peer_records(self, peer: str, origin: str, records: list[PeerRecord]) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO peer_log_records (peer, origin, idx, size, digest, record, "
            "proof) VALUES (?,?,?,?,?,?,?)",
            [(peer, origin, r.index, r.size, r.digest, r.record, b"".join(r.proof))
             for r in records])

    def add_peer_log_conflict(self, *, peer: str, origin: str, reason: str, detail: str,
                              stored_note: bytes | None, offered_note: bytes, now: int) -> None:
        self._conn.execute(
            "INSERT INTO peer_log_conflicts (peer, origin, reason, detail, stored_note, "
            "offered_note, at) VALUES (?,?,?,?,?,?,?)",
            (peer, origin, reason, detail, stored_note, offered_note, now))

    def peer_log_conflicts(self) -> list[dict[str, object]]:
        """Every split view caught, oldest first, with both checkpoints."""
        rows = self._conn.execute("SELECT peer, origin, reason, detail, stored_note, "
                                  "offered_note, at FROM peer_log_conflicts ORDER BY id")
        return [{"peer": p, "origin": o, "reason": r, "detail": d, "stored": s,
                 "offered": f, "at": a} for p, o, r, d, s, f, a in rows]

    def peer_witnessed_evidence(self, digests: set[bytes]) -> list[dict[str, object]]:
        """The ``witnessed`` entries (PROTOCOL.md §13.5) of the peer's records of these
        documents: each as the peer proved it, in a checkpoint a witness pinned here
        cosigned. A checkpoint no pinned witness cosigned proves no time and is left out."""
        rows = []
        for digest in digests:
            rows += self._conn.execute(
                "SELECT r.peer, r.origin, r.idx, r.record, r.proof, c.note FROM "
                "peer_log_records r JOIN peer_checkpoints c ON c.peer = r.peer AND "
                "c.origin = r.origin AND c.size = r.size WHERE r.digest = ? AND "
                "c.witnessed_by != ''", (digest,)).fetchall()
        # In the order the peer logged them.
        return [{"checkpoint": bytes(note), "index": idx, "proof": _split(bytes(proof)),
                 "record": bytes(record)} for _, _, idx, record, proof, note in sorted(rows)]

    def peer_log_summary(self, peer: str) -> dict[str, object]:
        """The last checkpoint of ``peer``'s log kept (size, the pinned witnesses that
        cosigned it, when it came) and how many split views of it were caught."""
        r = self._conn.execute("SELECT size, witnessed_by, at FROM peer_checkpoints WHERE "
                               "peer=? ORDER BY at DESC, size DESC LIMIT 1", (peer,)).fetchone()
        (views,) = self._conn.execute("SELECT COUNT(*) FROM peer_log_conflicts WHERE peer=?",
                                      (peer,)).fetchone()
        return {"size": r[0] if r else None, "witnessed_by": r[1].split() if r else [],
                "at": r[2] if r else None, "split_views": int(views)}


__all__ = ["PeerCheckpointRow", "PeerLog", "PeerRecord", "SentCheckpoint"]
