"""Upgrades: a store written by Bridge 0.1.0 opens in this Bridge (migrated to the current
schema, nothing lost), and a store from a newer Bridge is refused with a clear message rather
than misread."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bridge.core.errors import StoreError
from bridge.store.sqlite.store import SCHEMA_VERSION, Store

FIXTURES = Path(__file__).resolve().parent / "fixtures"


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
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.check() == []  # and it holds what was signed (store_check.py)
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
