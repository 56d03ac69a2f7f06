"""What is still open with one peer, read from a store file without opening it for writing (a
running daemon may hold it): ``bridge peer remove`` asks before it unpins a peer."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bridge.core.errors import StoreError


@dataclass(frozen=True)
class Pending:
    """Envelopes sealed for the peer and not yet delivered; items of rosters and manifests
    exchanged with it (either way) that have no acknowledgement yet."""

    envelopes: int
    unacknowledged: int

    @property
    def any(self) -> bool:
        return bool(self.envelopes or self.unacknowledged)


def pending_with(db_path: Path, peer: str) -> Pending:
    """What is open with ``peer`` in the store at ``db_path`` (nothing if there is no store)."""
    if not db_path.exists():
        return Pending(0, 0)
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {db_path}: {exc}") from exc
    try:
        envelopes = conn.execute("SELECT COUNT(*) FROM outbox WHERE peer=? AND state='pending'",
                                 (peer,)).fetchone()[0]
        unacked = conn.execute(
            "SELECT COUNT(*) FROM items JOIN documents d ON d.rowid = items.doc "
            "WHERE d.peer=? AND d.type != 'ack' AND items.status IS NULL", (peer,)).fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {db_path}: {exc}") from exc
    finally:
        conn.close()
    return Pending(int(envelopes), int(unacked))


__all__ = ["Pending", "pending_with"]
