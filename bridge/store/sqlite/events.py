"""Events: what the local API's event stream tells, and key changes that are committed before
the key files change."""

from __future__ import annotations

import json
from typing import Any

from bridge.store.sqlite.rows import Repository


class Events(Repository):
    """The ``events`` table (its ``data`` is JSON, read with SQLite's JSON1)."""

    # An event was written since the daemon last asked (``Store.take_written``): its event
    # streams have something to read. Made in ``Store.__init__``.
    _events_written: bool

    def key_change_committed(self, new_key_hex: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM events WHERE type IN ('key_rotated', 'key_revoked') AND "
            "json_extract(data, '$.new_key')=? LIMIT 1", (new_key_hex,)).fetchone() is not None

    def has_event(self, type: str, doc_rowid: int) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM events WHERE type=? AND json_extract(data, '$.doc')=? LIMIT 1",
            (type, doc_rowid)).fetchone() is not None

    def add_event(self, type: str, data: dict[str, Any], now: int) -> int:
        cur = self._conn.execute("INSERT INTO events (at, type, data) VALUES (?,?,?)",
                                 (now, type, json.dumps(data, sort_keys=True)))
        assert cur.lastrowid is not None
        self._events_written = True
        return cur.lastrowid

    def event_data(self, type: str) -> list[dict[str, Any]]:
        """The data of every event of ``type``, oldest first (for a type with few events)."""
        return [json.loads(d) for (d,) in self._conn.execute(
            "SELECT data FROM events WHERE type=? ORDER BY id", (type,))]

    def events_after(self, last_id: int, limit: int = 500) -> list[tuple[int, str, str]]:
        return list(self._conn.execute(
            "SELECT id, type, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, limit)))

    def last_event_id(self) -> int:
        r = self._conn.execute("SELECT MAX(id) FROM events").fetchone()
        return int(r[0] or 0)


__all__ = ["Events"]
