"""Each link's outbox: the envelopes this bridge sealed for a peer, in sequence order, with
the peer's receipt once delivered.

An envelope's sealed bytes live in ``outbox_sent`` (migration 5), not in its outbox row, from
the moment it is sealed: the row is small whatever the envelope. What delivery reads or writes
per envelope (the next pending ones, a document's pending count, one more attempt, the receipt)
touches small rows only, however many envelopes the link has delivered and however large the
pending ones are (SQLite rewrites a whole row on any update: counting an attempt at a row that
held its 1 MiB envelope wrote that megabyte again). The bytes never move after sealing, so a
resent envelope (a rewind after a gap) is the very same bytes. A store written before this
keeps the bytes of envelopes then pending in their rows until they are finished: every read
takes the bytes from wherever they are (``COALESCE``; ``audit_db`` too). The table's name is
older than this: it held finished envelopes only.
"""

from __future__ import annotations

from typing import Any

from bridge.core.link import OutboundState
from bridge.store.sqlite.rows import OutboxRow, Repository
from bridge.store.sqlite.told import Told

_COLUMNS = ("SELECT o.peer, o.seq, o.msg_id, o.digest, COALESCE(s.envelope, o.envelope), o.kind, "
            "o.doc, o.first, o.n, o.attempts FROM outbox o ")
_SEALED = "LEFT JOIN outbox_sent s ON s.peer = o.peer AND s.seq = o.seq "
_SELECT = _COLUMNS + _SEALED


def _row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(peer=r[0], seq=r[1], msg_id=r[2], digest=r[3], envelope=r[4], kind=r[5],
                     doc=r[6], first=r[7], n=r[8], attempts=r[9])


class Outbox(Repository):
    """The ``outbox`` table."""

    # The peers whose outbox gained pending envelopes since the daemon last asked
    # (``Store.take_written``): the delivery loops a change wakes. Made in ``Store.__init__``.
    _outboxes_written: set[str]
    # The envelopes queued since then, as the delivery loop would read them: told with the
    # change once committed (``Written.new_rows``), so that the loop need not read them back.
    # The peers whose envelopes were made pending again (a rewind): their loops look.
    _rows_new: Told[OutboxRow]
    _outboxes_rewound: set[str]

    def outbound_state(self, peer: str) -> OutboundState:
        r = self._conn.execute("SELECT seq, digest FROM outbox WHERE peer=? ORDER BY seq DESC "
                               "LIMIT 1", (peer,)).fetchone()
        return OutboundState(last_seq=r[0], last_digest=r[1]) if r else OutboundState(last_seq=0)

    def insert_outbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes,
                      envelope: bytes, kind: str, doc: int | None, first: int | None,
                      n: int | None, now: int) -> None:
        self._conn.execute(
            "INSERT INTO outbox (peer, seq, msg_id, digest, envelope, kind, doc, first, n, "
            "state, created) VALUES (?,?,?,?,x'',?,?,?,?,'pending',?)",
            (peer, seq, msg_id, digest, kind, doc, first, n, now))
        self._conn.execute("INSERT INTO outbox_sent (peer, seq, envelope) VALUES (?,?,?)",
                           (peer, seq, envelope))
        self._outboxes_written.add(peer)
        self._rows_new.add(OutboxRow(peer=peer, seq=seq, msg_id=msg_id, digest=digest,
                                     envelope=envelope, kind=kind, doc=doc, first=first, n=n,
                                     attempts=0))

    def next_pending(self, peer: str) -> OutboxRow | None:
        rows = self.pending_rows(peer, 0, 1)
        return rows[0] if rows else None

    def pending_rows(self, peer: str, after: int, limit: int) -> list[OutboxRow]:
        """The pending rows to ``peer`` after seq ``after``, in sequence order."""
        return [_row(r) for r in self._conn.execute(
            # The pending index, always: without it SQLite may walk the peer's rows in primary
            # key order, reading every finished row before the first pending one.
            _COLUMNS + "INDEXED BY outbox_pending " + _SEALED +
            "WHERE o.peer=? AND o.state='pending' AND o.seq > ? ORDER BY o.seq LIMIT ?",
            (peer, after, limit))]

    def pending_row(self, peer: str, seq: int) -> OutboxRow | None:
        r = self._conn.execute(_SELECT + "WHERE o.peer=? AND o.seq=? AND o.state='pending'",
                               (peer, seq)).fetchone()
        return _row(r) if r is not None else None

    def is_pending(self, peer: str, seq: int) -> bool:
        """Is our envelope ``seq`` to ``peer`` still pending? (Its row only: not its bytes.)"""
        return self._conn.execute("SELECT 1 FROM outbox WHERE peer=? AND seq=? AND "
                                  "state='pending'", (peer, seq)).fetchone() is not None

    def outbox_digest(self, peer: str, seq: int) -> bytes | None:
        """The hash of our envelope ``seq`` to ``peer``, whatever its state."""
        r = self._conn.execute("SELECT digest FROM outbox WHERE peer=? AND seq=?",
                               (peer, seq)).fetchone()
        return bytes(r[0]) if r is not None else None

    def count_attempt(self, peer: str, seq: int) -> None:
        # A small row: the envelope is beside it (this module's docstring).
        self._conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE peer=? AND seq=?",
                           (peer, seq))

    # Are there rows still holding their bytes (pending since before migration 5)? Asked
    # once: every row sealed since keeps its bytes beside it, and a finished row never gets
    # them back (a rewind leaves the bytes where they are), so the answer "no" stays true.
    _rows_hold_bytes: bool | None = None

    def _any_row_holds_bytes(self) -> bool:
        if self._rows_hold_bytes is None:
            self._rows_hold_bytes = self._conn.execute(
                "SELECT 1 FROM outbox INDEXED BY outbox_doc_pending WHERE state='pending' AND "
                "length(envelope) > 0 LIMIT 1").fetchone() is not None
        return self._rows_hold_bytes

    def finish_outbox(self, peer: str, seq: int, state: str, receipt: bytes, now: int, *,
                      attempt: bool = False) -> None:
        """The peer's receipt ends the envelope (the bytes of one sealed before they were kept
        beside the row move beside it now). ``attempt``: the attempt that brought the receipt
        is counted in the same write of the row (``count_attempt``)."""
        if self._any_row_holds_bytes():
            self._conn.execute(
                "INSERT OR REPLACE INTO outbox_sent (peer, seq, envelope) SELECT peer, seq, "
                "envelope FROM outbox WHERE peer=? AND seq=? AND length(envelope) > 0",
                (peer, seq))
        self._conn.execute("UPDATE outbox SET state=?, receipt=?, done_at=?, envelope=x'', "
                           "attempts = attempts + ? WHERE peer=? AND seq=?",
                           (state, receipt, now, int(attempt), peer, seq))

    def rewind_outbox(self, peer: str, from_seq: int) -> int:
        """Finished envelopes from ``from_seq`` on are pending again; their bytes stay where
        they are (PROTOCOL.md §8.4: a resent envelope is the same bytes)."""
        cur = self._conn.execute("UPDATE outbox SET state='pending' WHERE peer=? AND seq >= ? "
                                 "AND state != 'pending'", (peer, from_seq))
        if cur.rowcount:
            self._outboxes_written.add(peer)
            self._outboxes_rewound.add(peer)
        return cur.rowcount

    def finished_receipts(self, peer: str, from_seq: int, to_seq: int
                          ) -> list[tuple[int, bytes]]:
        """(seq, the peer's stored answer) of our finished envelopes to ``peer`` from
        ``from_seq`` to ``to_seq``, in sequence order: what a gap answer is weighed against."""
        return [(seq, bytes(receipt)) for seq, receipt in self._conn.execute(
            "SELECT seq, receipt FROM outbox WHERE peer=? AND seq BETWEEN ? AND ? AND "
            "state != 'pending' AND receipt IS NOT NULL ORDER BY seq",
            (peer, from_seq, to_seq))]

    def envelope_bytes(self, peer: str, seq: int) -> bytes | None:
        """The sealed bytes of our envelope ``seq`` to ``peer``, pending or finished."""
        r = self._conn.execute(
            "SELECT COALESCE(s.envelope, o.envelope) FROM outbox o LEFT JOIN outbox_sent s "
            "ON s.peer = o.peer AND s.seq = o.seq WHERE o.peer=? AND o.seq=?",
            (peer, seq)).fetchone()
        return bytes(r[0]) if r else None

    def pending_count(self, peer: str | None = None) -> int:
        # Counted in an index, never in the rows (outbox_doc_pending: pending rows only).
        if peer is None:
            return int(self._conn.execute(
                "SELECT COUNT(*) FROM outbox INDEXED BY outbox_doc_pending "
                "WHERE state='pending'").fetchone()[0])
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox INDEXED BY outbox_pending "
                                      "WHERE peer=? AND state='pending'", (peer,)).fetchone()[0])

    def queue_of(self, peer: str) -> tuple[int, int | None]:
        """How many envelopes wait for ``peer``, and when the oldest was queued (ms): counted
        in the index, the time read from one row (the lowest pending seq was queued first).
        ``MIN(created)`` walked every row of the link, its history and pending envelopes."""
        r = self._conn.execute("SELECT COUNT(*), MIN(seq) FROM outbox INDEXED BY outbox_pending "
                               "WHERE peer=? AND state='pending'", (peer,)).fetchone()
        if not r[0]:
            return 0, None
        (created,) = self._conn.execute("SELECT created FROM outbox WHERE peer=? AND seq=?",
                                        (peer, r[1])).fetchone()
        return int(r[0]), int(created)

    def pending_bytes(self, peer: str) -> int:
        """The sealed bytes of the envelopes waiting for ``peer`` (their lengths, read from
        the records' headers: SQLite does not read a blob to measure it)."""
        return int(self._conn.execute(
            "SELECT COALESCE(SUM(length(s.envelope)), 0) + COALESCE(SUM(length(o.envelope)), 0)"
            " FROM outbox o INDEXED BY outbox_pending LEFT JOIN outbox_sent s ON s.peer = o.peer "
            "AND s.seq = o.seq WHERE o.peer=? AND o.state='pending'", (peer,)).fetchone()[0])

    def pending_for_doc(self, doc: int) -> int:
        # The partial index outbox_doc_pending answers this without reading any envelope.
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox WHERE doc=? AND "
                                      "state='pending'", (doc,)).fetchone()[0])


NEW_ROWS_BYTES = 1 << 20
"""Queued envelopes kept for the next ``take_written``: at most this many bytes of them, the
newest (a loop told of fewer than were queued looks for the rest)."""

__all__ = ["NEW_ROWS_BYTES", "Outbox"]
