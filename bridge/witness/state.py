"""The witness's state (PROTOCOL.md §13.3): the logs it witnesses, the latest checkpoint it
cosigned for each, and its own log of every request it judged.

One SQLite file, through the store's :func:`open_database` (WAL, ``synchronous=FULL``): the
check of the old size and the write of the new checkpoint are one ``BEGIN IMMEDIATE``
transaction, committed before the answer is sent (tlog-witness: "the witness MUST persist the
new checkpoint before responding ... atomically"). A ``kill -9`` at any instant leaves the
state of the last commit: a cosignature that was sent is always on disk, and one that was not
committed was never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.core.audit_tree import identity_origin, log_verifier
from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import DecodeError
from bridge.core.notes import witness_wire
from bridge.core.notes.cosignature import Cosignature
from bridge.core.notes.note import NoteVerifier
from bridge.core.notes.witness_wire import AddCheckpoint, Decision, Witnessed
from bridge.store.sqlite.database import open_database, transaction
from bridge.store.sqlite.migrate import statements

SCHEMA = """
CREATE TABLE IF NOT EXISTS origins (
    origin    TEXT PRIMARY KEY,
    party     TEXT NOT NULL,
    identity  TEXT NOT NULL,            -- the log's identity file, as added
    added_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    origin    TEXT PRIMARY KEY REFERENCES origins(origin),
    size      INTEGER NOT NULL,
    root      BLOB NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,         -- seconds, the witness's clock
    origin    TEXT,                     -- as the request named it (peer text)
    status    INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    old       INTEGER,
    size      INTEGER,
    root      BLOB,
    note      BLOB                      -- the checkpoint with its cosignatures, when cosigned
);
"""


@dataclass(frozen=True, kw_only=True)
class RequestRow:
    id: int
    at: int
    origin: str | None
    status: int
    reason: str
    detail: str
    old: int | None
    size: int | None
    root: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "origin": self.origin, "status": self.status,
                "reason": self.reason, "detail": self.detail, "old": self.old,
                "size": self.size, "root": self.root.hex() if self.root else None}


class WitnessState:
    """The witness's SQLite file. Use from one thread at a time."""

    def __init__(self, path: Path) -> None:
        self._conn = open_database(path)
        with transaction(self._conn):
            for statement in statements(SCHEMA):
                self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    def add_origin(self, identity: PublicIdentity, now: int) -> str:
        origin = identity_origin(identity)
        with transaction(self._conn):
            self._conn.execute("INSERT OR REPLACE INTO origins (origin, party, identity, "
                               "added_at) VALUES (?,?,?,?)",
                               (origin, identity.party, identity.dumps(), now))
        return origin

    def origins(self) -> list[tuple[str, str, int | None]]:
        """(origin, party, latest cosigned size or None), by origin."""
        return list(self._conn.execute(
            "SELECT o.origin, o.party, l.size FROM origins o LEFT JOIN latest l "
            "ON l.origin = o.origin ORDER BY o.origin"))

    def _trusted(self, origin: str) -> list[NoteVerifier] | None:
        r = self._conn.execute("SELECT identity FROM origins WHERE origin=?",
                               (origin,)).fetchone()
        return None if r is None else [log_verifier(PublicIdentity.loads(r[0]))]

    def _latest(self, origin: str) -> Witnessed | None:
        r = self._conn.execute("SELECT size, root FROM latest WHERE origin=?",
                               (origin,)).fetchone()
        return None if r is None else Witnessed(size=r[0], root=r[1])

    def judge(self, body: bytes, now: int,
              cosign: Callable[[str, int], Cosignature]) -> Decision:
        """Decide one add-checkpoint request and record it, in one transaction."""
        with transaction(self._conn):
            try:
                request = witness_wire.parse_request(body)
            except DecodeError as exc:
                decision = Decision(400, "malformed", str(exc))
                request = AddCheckpoint(old=0, proof=(), note=b"")
            else:
                decision = witness_wire.decide(
                    request, trusted=self._trusted, state=self._latest,
                    cosign=lambda text: [cosign(text, now)])
            self._record(request, decision, now)
        return decision

    def _record(self, request: AddCheckpoint, d: Decision, now: int) -> None:
        cp = d.checkpoint
        note = None
        if d.status == 200 and cp is not None:
            self._conn.execute("INSERT OR REPLACE INTO latest (origin, size, root, timestamp) "
                               "VALUES (?,?,?,?)", (cp.origin, cp.size, cp.root, now))
            note = request.note + b"".join(c.line.line() for c in d.cosignatures)
        self._conn.execute(
            "INSERT INTO requests (at, origin, status, reason, detail, old, size, root, note) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (now, cp.origin if cp else None, d.status, d.reason, d.detail[:500],
             request.old if d.reason != "malformed" else None,
             cp.size if cp else None, cp.root if cp else None, note))

    def requests(self, limit: int = 1000) -> list[RequestRow]:
        rows = self._conn.execute("SELECT id, at, origin, status, reason, detail, old, size, "
                                  "root FROM requests ORDER BY id DESC LIMIT ?", (limit,))
        return [RequestRow(id=r[0], at=r[1], origin=r[2], status=r[3], reason=r[4],
                           detail=r[5], old=r[6], size=r[7], root=r[8])
                for r in rows][::-1]


__all__ = ["RequestRow", "WitnessState"]
