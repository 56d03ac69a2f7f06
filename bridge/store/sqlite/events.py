"""Events: what the local API's event stream tells, and key changes that are committed before
the key files change."""

from __future__ import annotations

import json
from typing import Any

from bridge.store.sqlite.rows import Repository
from bridge.store.sqlite.told import Told


class Events(Repository):
    """The ``events`` table (its ``data`` is JSON, read with SQLite's JSON1)."""

    # An event was written since the daemon last asked (``Store.take_written``): its event
    # streams have something to read. Made in ``Store.__init__``.
    _events_written: bool
    # The events written since then, (id, type, data): told with the change once committed,
    # so that a stream need not read them back (``Written.new_events``). Made in
    # ``Store.__init__``.
    _events_new: Told[tuple[int, str, str]]

    def key_change_committed(self, new_key_hex: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM events WHERE type IN ('key_rotated', 'key_revoked') AND "
            "json_extract(data, '$.new_key')=? LIMIT 1", (new_key_hex,)).fetchone() is not None

    def has_event(self, type: str, doc_rowid: int) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM events WHERE type=? AND json_extract(data, '$.doc')=? LIMIT 1",
            (type, doc_rowid)).fetchone() is not None

    def add_event(self, type: str, data: dict[str, Any], now: int) -> int:
        text = json.dumps(data, sort_keys=True)
        cur = self._conn.execute("INSERT INTO events (at, type, data) VALUES (?,?,?)",
                                 (now, type, text))
        assert cur.lastrowid is not None
        self._events_written = True
        self._events_new.add((cur.lastrowid, type, text))
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


NEW_EVENTS_KEPT = 512
"""Events kept for the next ``take_written`` at most; the oldest go first. Whoever is told
them checks that they follow what it holds (``bridge/daemon/recent.py``) and reads the store
for what it missed."""

__all__ = ["NEW_EVENTS_KEPT", "Events"]
