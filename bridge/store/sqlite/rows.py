"""The rows the store hands out: frozen dataclasses, never a cursor or a connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class Repository:
    """One concern's SQL over the store's connection (the ``Store`` composes them all)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    peer: str
    seq: int
    msg_id: bytes
    digest: bytes
    envelope: bytes
    kind: str
    doc: int | None
    first: int | None
    n: int | None
    attempts: int


@dataclass(frozen=True, kw_only=True)
class DocumentRow:
    rowid: int
    id: str
    direction: str
    peer: str
    type: str
    digest: bytes
    header: bytes
    sig: bytes
    count: int
    stored: int
    answers: int | None
    meta: dict[str, Any]
    created: int
    state: str
    updated: int


# Column names are constants of this module; values are always bound parameters.
DOC_COLUMNS = ("rowid, id, direction, peer, type, digest, header, sig, count, stored, answers, "
               "meta, created, state, updated")


def doc_row(r: Sequence[Any]) -> DocumentRow:
    return DocumentRow(rowid=r[0], id=r[1], direction=r[2], peer=r[3], type=r[4], digest=r[5],
                       header=r[6], sig=r[7], count=r[8], stored=r[9], answers=r[10],
                       meta=json.loads(r[11]), created=r[12], state=r[13], updated=r[14])


__all__ = ["DOC_COLUMNS", "DocumentRow", "OutboxRow", "Repository", "doc_row"]
