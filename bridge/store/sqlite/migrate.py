"""The schema, as numbered migrations: ``migrations/NNNN_what.sql`` takes the store from
version NNNN - 1 to NNNN. The version is ``PRAGMA user_version``.

A new store runs every migration from 1, an old one the ones it lacks: both end with the very
same schema (``tests/test_store_upgrade.py``). The files are package data, read through
``importlib.resources``, so an installed wheel finds them.

A migration that adds a column derived from stored bytes has a Python fill step (``FILLS``),
run after its SQL in the same transaction: the store is never at a version whose columns are
not filled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import cache
from importlib import resources

from bridge.core.errors import StoreError
from bridge.store.sqlite import database
from bridge.store.sqlite.audit_tree import fill_audit_tree
from bridge.store.sqlite.items import fill_entry_fields

FILLS: dict[int, Callable[[sqlite3.Connection], None]] = {4: fill_entry_fields,
                                                          6: fill_audit_tree}
"""Python steps of a migration, by the version it makes."""


RESERVED = "-- a number reserved for a migration this build does not have: no statements\n"
"""The script of a version no file makes (see ``migrations``)."""


@cache
def migrations() -> tuple[str, ...]:
    """The migrations' SQL, in order (``migrations()[n]`` takes version n to n + 1).

    Numbers increase strictly from 0001. A number no file has is ``RESERVED``: changes made
    side by side are each given their number in advance, so that a version means one schema
    in every build that has its file; a build without one of them runs no statement for it."""
    folder = resources.files("bridge.store.sqlite").joinpath("migrations")
    named = sorted((f.name, f) for f in folder.iterdir() if f.name.endswith(".sql"))
    scripts: list[str] = []
    for name, f in named:
        number = name[:4]
        if not (number.isascii() and number.isdigit() and name[4:5] == "_"
                and int(number) > len(scripts)):
            raise StoreError(f"migration {name} is out of sequence (expected a number above "
                             f"{len(scripts):04d}, then _)")
        scripts += [RESERVED] * (int(number) - 1 - len(scripts))
        scripts.append(f.read_text(encoding="utf-8"))
    return tuple(scripts)


def schema_version() -> int:
    """The version this Bridge writes: the number of its migrations."""
    return len(migrations())


def statements(script: str) -> list[str]:
    """The statements of a migration, split where SQLite says one is complete (so a ``;`` in
    a comment or a string does not cut one)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise StoreError(f"a migration ends inside a statement: {pending.strip()[:60]!r}")
    return out


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the store to ``schema_version()``, one transaction per migration; refuse a store
    from a newer Bridge rather than misread it."""
    scripts = migrations()
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(scripts):
        raise StoreError(f"the store has schema version {version}, newer than this Bridge "
                         f"({len(scripts)}); upgrade Bridge")
    for n in range(version, len(scripts)):
        with database.transaction(conn):
            for statement in statements(scripts[n]):
                conn.execute(statement)
            fill = FILLS.get(n + 1)
            if fill is not None:
                fill(conn)
            conn.execute(f"PRAGMA user_version = {n + 1}")


__all__ = ["FILLS", "RESERVED", "migrate", "migrations", "schema_version", "statements"]
