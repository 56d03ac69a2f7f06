"""Upgrades: a store written by Bridge 0.1.0 opens in this Bridge (migrated to the current
schema, nothing lost, the same schema as a new store's), and a store from a newer Bridge is
refused with a clear message rather than misread."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from bridge.core.errors import StoreError
from bridge.engine.store_check import check_all
from bridge.store.sqlite.store import SCHEMA_VERSION, Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _pragma(path: Path, pragma: str) -> object:
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute(f"PRAGMA {pragma}").fetchone()[0]


def _schema(path: Path) -> list[tuple[str, str, str, str | None]]:
    """Every table and index, with the CREATE statement SQLite keeps for it."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                           "ORDER BY type, name").fetchall()


def _restore(dump: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(target)
    con.executescript(dump.read_text())
    con.close()
    return target


@pytest.mark.parametrize(("party", "direction"), [("alpha", "out"), ("beta", "in")])
def test_store_of_release_0_1_0_opens_migrated_with_everything_in_it(
        tmp_path: Path, party: str, direction: str) -> None:
    path = _restore(FIXTURES / f"store-0.1.0-{party}.sql", tmp_path / party / "bridge.db")
    store = Store(path)
    try:
        assert _pragma(path, "user_version") == SCHEMA_VERSION
        assert _pragma(path, "integrity_check") == "ok"
        assert check_all(store.check_rows()) == []  # and it holds what was signed
        (doc,) = store.documents_by_id("M-UPGRADE-1", direction)
        assert (doc.count, doc.meta) == (5, {"batch": 1, "declared": 5})
        declared, undeclared = store.current_statuses(doc.rowid)
        assert declared == {"P-00001": "RECEIVED", "P-00002": "DISPUTED",
                            "P-00003": "RECEIVED", "P-00004": "RECEIVED",
                            "P-00005": "RECEIVED"}
        assert undeclared == {}
    finally:
        store.close()


def test_store_from_a_newer_bridge_is_refused_not_misread(tmp_path: Path) -> None:
    path = _restore(FIXTURES / "store-0.1.0-alpha.sql", tmp_path / "bridge.db")
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError, match="newer than this Bridge"):
        Store(path)


@pytest.mark.parametrize("party", ["alpha", "beta"])
def test_an_upgraded_store_has_the_schema_of_a_new_one(tmp_path: Path, party: str) -> None:
    upgraded = _restore(FIXTURES / f"store-0.1.0-{party}.sql", tmp_path / "old" / "bridge.db")
    Store(upgraded).close()
    new = tmp_path / "new" / "bridge.db"
    Store(new).close()
    assert _pragma(new, "user_version") == _pragma(upgraded, "user_version") == SCHEMA_VERSION
    assert _schema(upgraded) == _schema(new)
    assert any("roster_record" in (sql or "") for *_, sql in _schema(new))


def test_an_upgrade_is_idempotent_and_a_store_reopens_unchanged(tmp_path: Path) -> None:
    path = _restore(FIXTURES / "store-0.1.0-alpha.sql", tmp_path / "bridge.db")
    Store(path).close()
    before = _schema(path)
    Store(path).close()
    assert _schema(path) == before
