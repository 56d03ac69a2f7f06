"""The SQLite store: documents, items and their acknowledgement history, the outbox and inbox of
each link, refusals, events and the hash-chained audit log (``bridge/core/audit.py``).

``Store`` composes one repository per concern (``documents``, ``items``, ``acknowledgements``,
``outbox``, ``inbox``, ``refusals``, ``events``, ``audit_log``, ``audit_tree``, ``peer_log``,
``reconcile``, ``staging``) over one connection (``database``), brought to the current schema
by ``migrate``. No caller sees SQLite: ``transaction()`` yields nothing, rows come out as
dataclasses or plain values.

SQLite specifics stay in this package: JSON1 over the JSON columns (``documents.meta``,
``events.data``; ``json_each`` for lists bound as one parameter), the scalar ``MAX(a, b)``,
``instr`` and bit operators in the reconciliation query, and the pragmas.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge.core.errors import StoreError
from bridge.store.sqlite import database
from bridge.store.sqlite.acknowledgements import Acknowledgements
from bridge.store.sqlite.audit_log import AuditLog
from bridge.store.sqlite.audit_tree import AuditTree
from bridge.store.sqlite.check import CheckRows, status_mismatch
from bridge.store.sqlite.documents import Documents
from bridge.store.sqlite.events import Events
from bridge.store.sqlite.inbox import Inbox
from bridge.store.sqlite.items import Items
from bridge.store.sqlite.migrate import migrate, schema_version
from bridge.store.sqlite.outbox import Outbox
from bridge.store.sqlite.peer_log import PeerLog
from bridge.store.sqlite.reconcile import Reconciliation
from bridge.store.sqlite.refusals import Refusals
from bridge.store.sqlite.rows import DocumentRow, OutboxRow, Repository
from bridge.store.sqlite.staging import Staging

SCHEMA_VERSION = schema_version()


class Store(Documents, Items, Acknowledgements, Outbox, Inbox, Refusals, Events, AuditLog,
            AuditTree, PeerLog, Reconciliation, Staging):
    """All SQL lives in this package. Methods are synchronous; call them from one thread."""

    def __init__(self, path: Path) -> None:
        conn = database.open_database(path)
        try:
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"cannot open the store {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        Repository.__init__(self, conn)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all."""
        with database.transaction(self._conn):
            yield

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cap_pages(self, pages: int) -> None:
        """A test hook: writes past ``pages`` pages fail as on a full disk."""
        database.cap_pages(self._conn, pages)

    # ------------------------------------------------------------ is the store what was signed?

    def check_rows(self) -> CheckRows:
        """What the store check (``bridge/engine/store_check.py``) reads."""
        return CheckRows(self._conn)

    def status_mismatch(self, doc: int, first: int = 0, last: int = 1 << 62) -> str | None:
        """The first item of ``doc`` (index in [first, last]) whose status is not its signed
        history's latest, else None."""
        return status_mismatch(self._conn, doc, first, last)

    def status_mismatch_at(self, doc: int, indexes: list[int]) -> str | None:
        """The first of the items of ``doc`` at ``indexes`` whose status is not its signed
        history's latest, else None."""
        return status_mismatch(self._conn, doc, indexes=indexes)

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version``: it changes when another connection (another
        process, an edit behind the daemon's back) commits to the file, never for this one's
        own writes."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def status_mismatch_any(self, peer: str | None) -> tuple[int, str] | None:
        """(document rowid, diagnosis) of the first such item in any roster or manifest."""
        for (doc,) in self._conn.execute(
                "SELECT rowid FROM documents WHERE type != 'ack' AND (?1 IS NULL OR peer = ?1) "
                "ORDER BY rowid", (peer,)).fetchall():
            what = self.status_mismatch(doc)
            if what is not None:
                return doc, what
        return None


# DocumentRow and OutboxRow are named here too: the engine and the transports take them from
# the module of the Store whose methods return them.
__all__ = ["SCHEMA_VERSION", "DocumentRow", "OutboxRow", "Store"]
