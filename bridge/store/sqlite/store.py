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
from dataclasses import dataclass, field
from pathlib import Path

from bridge.core.errors import StoreError
from bridge.store.sqlite import database
from bridge.store.sqlite.acknowledgements import Acknowledgements
from bridge.store.sqlite.audit_log import AuditLog
from bridge.store.sqlite.audit_tree import AuditTree
from bridge.store.sqlite.check import CheckRows, status_mismatch
from bridge.store.sqlite.documents import Documents
from bridge.store.sqlite.events import NEW_EVENTS_KEPT, Events
from bridge.store.sqlite.inbox import Inbox
from bridge.store.sqlite.items import Items
from bridge.store.sqlite.migrate import migrate, schema_version
from bridge.store.sqlite.outbox import NEW_ROWS_BYTES, Outbox
from bridge.store.sqlite.peer_log import PeerLog
from bridge.store.sqlite.reconcile import Reconciliation
from bridge.store.sqlite.refusals import Refusals
from bridge.store.sqlite.rows import DocumentRow, OutboxRow, Repository
from bridge.store.sqlite.staging import Staging
from bridge.store.sqlite.told import Told

SCHEMA_VERSION = schema_version()


@dataclass(frozen=True)
class Written:
    """What this connection wrote since it was last asked (``Store.take_written``), as far
    as a waiter needs it: the peers whose outboxes gained pending envelopes (their delivery
    loops have work), and whether any event was written (the event streams have some). A
    write later rolled back is still named: a waiter woken for nothing looks and finds
    nothing; one not woken for a write would miss it.

    ``new_events``: the events themselves, (id, type, data) in id order, when they are known
    to be committed: every event written since the last ask, none rolled back. Empty when
    ``events`` is true but that is not known (asked inside a transaction, or the group's
    commit failed): then whoever wants them reads the store. ``new_rows``, likewise, the
    envelopes queued (the newest, up to a budget), and ``rewound`` the outboxes whose
    envelopes were made pending again: what is in them is not told. None of the three is
    part of the comparison: they say what, where the fields above say whom."""

    outboxes: frozenset[str]
    events: bool
    new_events: tuple[tuple[int, str, str], ...] = field(default=(), compare=False)
    new_rows: tuple[OutboxRow, ...] = field(default=(), compare=False)
    rewound: frozenset[str] = field(default=frozenset(), compare=False)


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
        self._grouped = False  # a group of operations is open (``begin_group``)
        self._depth = 0  # transactions open inside the current operation
        self._outboxes_written: set[str] = set()
        self._events_written = False
        self._events_new: Told[tuple[int, str, str]] = Told(NEW_EVENTS_KEPT, lambda _: 1)
        self._rows_new: Told[OutboxRow] = Told(NEW_ROWS_BYTES, lambda r: len(r.envelope) + 1)
        self._outboxes_rewound: set[str] = set()

    def take_written(self) -> Written:
        """What was written since the last call (``Written``), and start counting again. The
        events themselves go with it only outside a transaction: inside one they may yet be
        rolled back, and are kept for the next call."""
        new: tuple[tuple[int, str, str], ...] = ()
        rows: tuple[OutboxRow, ...] = ()
        if not self._conn.in_transaction:
            new, rows = self._events_new.take(), self._rows_new.take()
        written = Written(frozenset(self._outboxes_written), self._events_written or bool(new),
                          new, rows, frozenset(self._outboxes_rewound))
        self._outboxes_written.clear()
        self._outboxes_rewound.clear()
        self._events_written = False
        return written

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: everything inside commits together or not at all. Inside a group
        (``begin_group``) it is a savepoint of the group's transaction, on disk with the
        group's commit."""
        if not self._grouped and not self._depth:
            self.audit_transaction_begun()
        events, rows = self._events_new.made, self._rows_new.made
        try:
            with database.transaction(self._conn):
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
        except BaseException:
            self.forget_audit_tip()  # rolled back: the last record may be gone again
            self._events_new.forget_since(events)  # and its events (their ids are taken again)
            self._rows_new.forget_since(rows)
            raise

    @property
    def in_transaction(self) -> bool:
        """Is an operation's transaction open (not merely the group around operations)?"""
        return self._depth > 0

    # ------------------------------------------------------------ group commit

    def begin_group(self) -> None:
        """Open one transaction for the operations that follow (the daemon's group commit):
        each one's ``transaction`` is a savepoint in it, until ``commit_group``."""
        self.audit_transaction_begun()
        database.begin(self._conn)
        self._grouped = True

    @property
    def group_intact(self) -> bool:
        """False once SQLite has rolled the group's transaction back by itself (a full disk or
        an I/O error may do that): none of the group's operations are kept."""
        return self._grouped and self._conn.in_transaction

    def commit_group(self) -> None:
        """One COMMIT (one fsync) for the whole group; ``StoreUnavailable`` if the disk refuses
        it, and then nothing of the group is on disk."""
        self._grouped = False
        try:
            database.commit(self._conn)
        except BaseException:
            self.forget_audit_tip()
            self._forget_told()
            raise

    def abandon_group(self) -> None:
        """The group rolled back whole (nothing of it is kept)."""
        self._grouped = False
        self.forget_audit_tip()
        self._forget_told()
        database.rollback(self._conn)

    def _forget_told(self) -> None:
        """The group is lost: nothing it wrote is told (the waiters named look instead)."""
        self._events_new.clear()
        self._rows_new.clear()

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
__all__ = ["SCHEMA_VERSION", "DocumentRow", "OutboxRow", "Store", "Written"]
