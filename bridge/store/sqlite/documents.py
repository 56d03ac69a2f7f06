"""Documents: rosters, manifests and acknowledgements, one row each with its signed header
(the entries are in ``items`` and ``ack_entries``)."""

from __future__ import annotations

import json
from typing import Any

from bridge.store.sqlite.rows import DOC_COLUMNS, DocumentRow, Repository, doc_row


class Documents(Repository):
    """The ``documents`` table."""

    def insert_document(self, *, id: str, direction: str, peer: str, type: str, digest: bytes,
                        header: bytes, sig: bytes, count: int, answers: int | None,
                        meta: dict[str, Any], created: int, state: str, now: int) -> int:
        cur = self._conn.execute(
            "INSERT INTO documents (id, direction, peer, type, digest, header, sig, count, "
            "answers, meta, created, state, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (id, direction, peer, type, digest, header, sig, count, answers,
             json.dumps(meta, sort_keys=True), created, state, now))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def document_exists(self, direction: str, peer: str, doc_id: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM documents WHERE direction=? AND peer=? AND id=?",
            (direction, peer, doc_id)).fetchone() is not None

    def outbound_document(self, peer: str, doc_id: str) -> DocumentRow | None:
        r = self._conn.execute(
            f"SELECT {DOC_COLUMNS} FROM documents "  # noqa: S608
            "WHERE direction='out' AND peer=? AND id=?", (peer, doc_id)).fetchone()
        return doc_row(r) if r else None

    def document_by_digest(self, digest: bytes) -> DocumentRow | None:
        r = self._conn.execute(f"SELECT {DOC_COLUMNS} FROM documents WHERE digest=?",  # noqa: S608
                               (digest,)).fetchone()
        return doc_row(r) if r else None

    def document_by_rowid(self, rowid: int) -> DocumentRow | None:
        r = self._conn.execute(f"SELECT {DOC_COLUMNS} FROM documents WHERE rowid=?",  # noqa: S608
                               (rowid,)).fetchone()
        return doc_row(r) if r else None

    def documents_by_id(self, doc_id: str, direction: str | None = None) -> list[DocumentRow]:
        sql = f"SELECT {DOC_COLUMNS} FROM documents WHERE id=?"  # noqa: S608
        args: list[Any] = [doc_id]
        if direction:
            sql += " AND direction=?"
            args.append(direction)
        return [doc_row(r) for r in self._conn.execute(sql, args)]

    def list_documents(self, *, direction: str | None, type: str | None, peer: str | None,
                       include_acks: bool = False, limit: int = 1000,
                       before: int | None = None) -> list[DocumentRow]:
        """Newest first; with ``before`` (a rowid), only documents older than that one."""
        sql = f"SELECT {DOC_COLUMNS} FROM documents WHERE 1=1"  # noqa: S608
        args: list[Any] = []
        if before is not None:
            sql += " AND rowid < ?"
            args.append(before)
        for col, val in (("direction", direction), ("type", type), ("peer", peer)):
            if val:
                sql += f" AND {col}=?"
                args.append(val)
        if not include_acks and type != "ack":
            sql += " AND type != 'ack'"
        sql += " ORDER BY rowid DESC LIMIT ?"
        args.append(limit)
        return [doc_row(r) for r in self._conn.execute(sql, args)]

    def acks_of(self, doc_rowid: int) -> list[DocumentRow]:
        return [doc_row(r) for r in self._conn.execute(
            f"SELECT {DOC_COLUMNS} FROM documents WHERE answers=? ORDER BY created, rowid",  # noqa: S608
            (doc_rowid,))]

    def last_ack_created(self, doc_rowid: int, exclude: int | None = None) -> int | None:
        """Creation time of the latest acknowledgement of ``doc_rowid`` (receipts need them
        strictly increasing)."""
        r = self._conn.execute("SELECT MAX(created) FROM documents WHERE answers=? AND rowid != ?",
                               (doc_rowid, exclude or -1)).fetchone()
        return None if r[0] is None else int(r[0])

    def documents_with_meta_key(self, key: str) -> list[DocumentRow]:
        """Documents not yet fully acknowledged whose meta has ``key``."""
        return [doc_row(r) for r in self._conn.execute(
            f"SELECT {DOC_COLUMNS} FROM documents WHERE state != 'acknowledged' "  # noqa: S608
            "AND json_extract(meta, '$.' || ?) IS NOT NULL", (key,))]

    def set_document_state(self, rowid: int, state: str, now: int) -> None:
        self._conn.execute("UPDATE documents SET state=?, updated=? WHERE rowid=?",
                           (state, now, rowid))

    def add_stored(self, rowid: int, n: int) -> int:
        return int(self._conn.execute("UPDATE documents SET stored = stored + ? WHERE rowid=? "
                                      "RETURNING stored", (n, rowid)).fetchone()[0])


__all__ = ["Documents"]
