"""Each link's outbox: the envelopes this bridge sealed for a peer, in sequence order, with
the peer's receipt once delivered."""

from __future__ import annotations

from bridge.core.link import OutboundState
from bridge.store.sqlite.rows import OutboxRow, Repository


class Outbox(Repository):
    """The ``outbox`` table."""

    def outbound_state(self, peer: str) -> OutboundState:
        r = self._conn.execute("SELECT seq, digest FROM outbox WHERE peer=? ORDER BY seq DESC "
                               "LIMIT 1", (peer,)).fetchone()
        return OutboundState(last_seq=r[0], last_digest=r[1]) if r else OutboundState(last_seq=0)

    def insert_outbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes,
                      envelope: bytes, kind: str, doc: int | None, first: int | None,
                      n: int | None, now: int) -> None:
        self._conn.execute(
            "INSERT INTO outbox (peer, seq, msg_id, digest, envelope, kind, doc, first, n, "
            "state, created) VALUES (?,?,?,?,?,?,?,?,?,'pending',?)",
            (peer, seq, msg_id, digest, envelope, kind, doc, first, n, now))

    def next_pending(self, peer: str) -> OutboxRow | None:
        r = self._conn.execute(
            "SELECT peer, seq, msg_id, digest, envelope, kind, doc, first, n, attempts "
            "FROM outbox WHERE peer=? AND state='pending' ORDER BY seq LIMIT 1",
            (peer,)).fetchone()
        if r is None:
            return None
        return OutboxRow(peer=r[0], seq=r[1], msg_id=r[2], digest=r[3], envelope=r[4],
                         kind=r[5], doc=r[6], first=r[7], n=r[8], attempts=r[9])

    def count_attempt(self, peer: str, seq: int) -> None:
        self._conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE peer=? AND seq=?",
                           (peer, seq))

    def finish_outbox(self, peer: str, seq: int, state: str, receipt: bytes, now: int) -> None:
        self._conn.execute("UPDATE outbox SET state=?, receipt=?, done_at=? WHERE peer=? AND seq=?",
                           (state, receipt, now, peer, seq))

    def rewind_outbox(self, peer: str, from_seq: int) -> int:
        cur = self._conn.execute("UPDATE outbox SET state='pending' WHERE peer=? AND seq >= ? "
                                 "AND state != 'pending'", (peer, from_seq))
        return cur.rowcount

    def pending_count(self, peer: str | None = None) -> int:
        if peer is None:
            return int(self._conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE state='pending'").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox WHERE peer=? AND "
                                      "state='pending'", (peer,)).fetchone()[0])

    def queue_of(self, peer: str) -> tuple[int, int | None]:
        """How many envelopes wait for ``peer``, and when the oldest was queued (ms)."""
        r = self._conn.execute("SELECT COUNT(*), MIN(created) FROM outbox WHERE peer=? AND "
                               "state='pending'", (peer,)).fetchone()
        return int(r[0]), (int(r[1]) if r[1] is not None else None)

    def pending_for_doc(self, doc: int) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox WHERE doc=? AND "
                                      "state='pending'", (doc,)).fetchone()[0])


__all__ = ["Outbox"]
