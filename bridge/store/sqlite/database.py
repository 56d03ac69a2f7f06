"""Opening the SQLite file, its pragmas, and the one transaction.

One connection, used from one thread (the daemon's database thread). WAL mode with
``synchronous=FULL``: a commit is on disk before the API answers 202, so ``kill -9`` (or power
loss) after the answer loses nothing. Every change that belongs together is one transaction.

Group commit: the daemon's database thread may run several operations in one transaction
(``begin`` … ``commit``), each operation's own transactions then savepoints inside it
(``savepoint``), so that the group costs one fsync and each operation is still all or nothing.
No caller is answered before the group's COMMIT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bridge.core.errors import StoreError, StoreUnavailable, UsageError
from bridge.home.files import create_private, make_private

# SQLite primary result codes (https://sqlite.org/rescode.html): "cannot write now", not "bad
# request"; and "the file is damaged".
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

CACHE_KIB = 32 * 1024
"""The connection's page cache, at most: 32 MiB (SQLite's default is 2 MiB; a negative
``cache_size`` is in KiB, https://sqlite.org/pragma.html#pragma_cache_size). Item ids come in
no order, so the indexes on them (items_by_id, items_by_key) take each new item at a random
page: with 2 MiB of cache nearly every one of those pages is read again from the file. Filled
only as pages are read, and bounded whatever the store holds: a daemon's memory does not grow
with its store."""


def _primary_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_corruption(exc: BaseException) -> bool:
    """A SQLite error that says the file is damaged (not busy, locked or full)."""
    return isinstance(exc, sqlite3.DatabaseError) and \
        _primary_code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _unavailable(exc: sqlite3.OperationalError) -> StoreUnavailable | None:
    code = _primary_code(exc)
    if code == _SQLITE_FULL:
        return StoreUnavailable(f"the store is full: {exc}")
    if code == _SQLITE_IOERR:
        return StoreUnavailable(f"the store cannot be written: {exc}")
    return None


def _make_store_files_private(path: Path) -> None:
    """The store holds every record in clear: 0600 before SQLite opens it. SQLite gives the
    ``-wal`` and ``-shm`` files it creates the database file's mode, so creating that file 0600
    first (rather than letting SQLite create it under the umask) makes them 0600 too; ones left
    by an older version are tightened here."""
    try:
        create_private(path)
        for suffix in ("-wal", "-shm", "-journal"):
            make_private(path.with_name(path.name + suffix))
    except (OSError, UsageError) as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc


def open_database(path: Path) -> sqlite3.Connection:
    """The store's read-write connection, its files private, in autocommit mode (transactions
    are explicit: ``transaction``)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _make_store_files_private(path)
    try:
        # More statements than the default 128 cache: the daemon prepares each once.
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               cached_statements=512)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    return conn


@contextmanager
def _writes(conn: sqlite3.Connection) -> Iterator[None]:
    """A full disk or an I/O error as ``StoreUnavailable`` (the server's fault, not the
    request's); any other SQLite error as it is."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        unavailable = _unavailable(exc)
        if unavailable is None:
            raise
        raise unavailable from exc


# The connections inside a group (``begin`` … ``commit``), by id: their transactions are
# savepoints of the group's. A set rather than a flag on the connection: sqlite3.Connection
# takes no attributes.
_GROUPED: set[int] = set()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception; inside a group, a
    ``savepoint`` of the group's transaction. A full disk or an I/O error raises
    ``StoreUnavailable`` (the server's fault, not the request's)."""
    if id(conn) in _GROUPED:
        with savepoint(conn):
            yield
        return
    with _writes(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite may have rolled back already (a full disk does that).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def cap_pages(conn: sqlite3.Connection, pages: int) -> None:
    """SQLite's ``max_page_count``: writes past it fail as a full disk would (SQLITE_FULL)."""
    conn.execute(f"PRAGMA max_page_count = {int(pages)}")


def begin(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE`` of a group of operations (group commit): the write lock now, so
    that no operation of the group meets a busy file halfway."""
    with _writes(conn):
        conn.execute("BEGIN IMMEDIATE")
    _GROUPED.add(id(conn))


def commit(conn: sqlite3.Connection) -> None:
    """``COMMIT`` of a group: one fsync (synchronous=FULL) for every operation in it. If it
    fails, whatever is left of the group is rolled back: none of it is on disk."""
    _GROUPED.discard(id(conn))
    try:
        with _writes(conn):
            conn.execute("COMMIT")
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def rollback(conn: sqlite3.Connection) -> None:
    """The group abandoned (SQLite may have rolled it back already: a full disk does that)."""
    _GROUPED.discard(id(conn))
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextmanager
def savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    """One operation's transaction inside a group (https://sqlite.org/lang_savepoint.html):
    released into the group on success, rolled back to where it began on any exception, so a
    failing operation takes back only its own writes. Its changes reach the disk with the
    group's COMMIT, never before."""
    with _writes(conn):
        conn.execute("SAVEPOINT operation")
        try:
            yield
        except BaseException:
            # A full disk may have rolled back the whole group already: nothing to undo here,
            # and the group's runner sees it (``in_transaction`` is false).
            if conn.in_transaction:
                conn.execute("ROLLBACK TO operation")
                conn.execute("RELEASE operation")
            raise
        conn.execute("RELEASE operation")


__all__ = ["begin", "cap_pages", "commit", "is_corruption", "open_database", "rollback",
           "savepoint", "transaction"]
