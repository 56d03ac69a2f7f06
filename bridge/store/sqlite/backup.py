"""A consistent copy of a store while its daemon runs: SQLite's online backup
(https://sqlite.org/backup.html), which copies the database as one transaction sees it, the
pages still in the write-ahead log included. Copying ``bridge.db`` alone misses those: a copy
of a running daemon's file may be empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bridge.core.errors import StoreError
from bridge.home.files import create_private


def online_copy(db_path: Path, dest: Path) -> None:
    """Copy the store at ``db_path`` to ``dest`` (created 0600; it must not exist)."""
    if not db_path.exists():
        raise StoreError(f"no store at {db_path}: nothing to back up")
    create_private(dest)
    try:
        src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                # One file, no -wal beside it: the copy is whole by itself.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot back up the store {db_path}: {exc}") from exc


_SENT = "SELECT peer, MAX(seq) FROM outbox GROUP BY peer"
_RECEIVED = "SELECT peer, MAX(seq) FROM inbox GROUP BY peer"


def link_positions(db_path: Path) -> dict[str, dict[str, int]]:
    """For each peer in the store: the last sequence number sent to it and received from it
    (what a restore must not reuse: PROTOCOL.md §8)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        out: dict[str, dict[str, int]] = {}
        for query, key in ((_SENT, "sent_seq"), (_RECEIVED, "received_seq")):
            for peer, seq in conn.execute(query):
                out.setdefault(peer, {"sent_seq": 0, "received_seq": 0})[key] = int(seq)
        return out
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {db_path}: {exc}") from exc
    finally:
        conn.close()


__all__ = ["link_positions", "online_copy"]
