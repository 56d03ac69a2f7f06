"""Refusals: what this bridge refused and why (with the alarm flag of those that are security
alarms), coalesced where no peer is accountable; and the counters ``/metrics`` reads off the
rows."""

from __future__ import annotations

from typing import Any

from bridge.store.sqlite.rows import Repository

_HOUR_MS = 3_600_000
REFUSAL_SOURCES_PER_HOUR = 64
"""Coalesced refusal rows an hour with a source of their own (per reason: the others share
``OTHER_SOURCES``). Sources are addresses, which an attacker chooses."""
OTHER_SOURCES = "other sources"


class Refusals(Repository):
    """The ``refusals`` table, and the counters over every table."""

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
        if self._conn.execute("UPDATE refusals SET count = count + ?, last_at = ? WHERE bucket = ?",
                              (count, now, bucket)).rowcount:
            return False
        if source != OTHER_SOURCES and self._conn.execute(
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
        self._conn.execute(
            "INSERT INTO refusals (at, peer, seq, digest, reason, detail, alarm, count, "
            "last_at, source, bucket) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (now, peer, seq, digest, reason, detail, int(alarm), count, now, source, bucket))

    def refusals(self) -> list[tuple[Any, ...]]:
        """(at, peer, seq, reason, detail, alarm, count, last_at, source), oldest first."""
        return list(self._conn.execute(
            "SELECT at, peer, seq, reason, detail, alarm, count, COALESCE(last_at, at), source "
            "FROM refusals ORDER BY rowid"))

    def counters(self) -> dict[str, int]:
        """What ``/metrics`` counts, from the rows (``MAX(a, b)`` is SQLite's scalar max)."""
        q = self._conn.execute
        return {
            # Both counted in an index: a pending row's state comes after its envelope.
            "queue_depth": int(q("SELECT COUNT(*) FROM outbox INDEXED BY outbox_doc_pending "
                                 "WHERE state='pending'").fetchone()[0]),
            "envelopes_sent": int(q("SELECT COUNT(*) FROM outbox INDEXED BY outbox_pending "
                                    "WHERE state != 'pending'").fetchone()[0]),
            "envelopes_received": int(q("SELECT COUNT(*) FROM inbox").fetchone()[0]),
            "envelopes_rejected": int(q("SELECT COALESCE(SUM(count), 0) FROM refusals"
                                        ).fetchone()[0]),
            "refusal_rows": int(q("SELECT COUNT(*) FROM refusals").fetchone()[0]),
            "retries": int(q("SELECT COALESCE(SUM(MAX(attempts - 1, 0)), 0) FROM outbox"
                             ).fetchone()[0]),
            "security_alarms": int(q("SELECT COALESCE(SUM(count), 0) FROM refusals WHERE alarm=1"
                                     ).fetchone()[0]),
            "security_alarm_events": int(q("SELECT COUNT(*) FROM events WHERE "
                                           "type='security_alarm'").fetchone()[0]),
        }


__all__ = ["OTHER_SOURCES", "REFUSAL_SOURCES_PER_HOUR", "Refusals"]
