"""Each link's inbox: the envelopes a peer sent, by sequence number, with the receipt this
bridge signed for each."""

from __future__ import annotations

from bridge.core.link import InboundState
from bridge.store.sqlite.rows import Repository


class Inbox(Repository):
    """The ``inbox`` table."""

    def inbound_state(self, peer: str) -> InboundState:
        r = self._conn.execute("SELECT seq, digest FROM inbox WHERE peer=? ORDER BY seq DESC "
                               "LIMIT 1", (peer,)).fetchone()
        return InboundState(last_seq=r[0], last_digest=r[1]) if r else InboundState(last_seq=0)

    def inbox_entry(self, peer: str, seq: int) -> tuple[bytes, bytes] | None:
        r = self._conn.execute("SELECT digest, receipt FROM inbox WHERE peer=? AND seq=?",
                               (peer, seq)).fetchone()
        return (r[0], r[1]) if r else None

    def insert_inbox(self, *, peer: str, seq: int, msg_id: bytes, digest: bytes, header: bytes,
                     kind: str, result: str, receipt: bytes, now: int) -> None:
        self._conn.execute(
            "INSERT INTO inbox (peer, seq, msg_id, digest, header, kind, result, receipt, at) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (peer, seq, msg_id, digest, header, kind, result, receipt, now))


__all__ = ["Inbox"]
