"""The reconciliation's item counts (bridge/store/sqlite/reconcile.py: entries alone counted per
document from an index, only the entries that share a key grouped by person) are exactly those
of the one GROUP BY over every entry they replace, kept here as the reference: on random stores
with rosters and manifests in both directions and with two peers, manifest entries with and
without roster_record (several naming one record, an id equal to another's record), categories
from the document, the entry, none, a non-text one and one longer than the 64 kept, every
status and one this version does not know, every transport state, undeclared
acknowledgements; and the reasons, read from their own index, are those read row by row.
Real SQLite files, synthetic records, no timings."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_reconcile_store import Builder

from bridge.core.documents import ACK_STATUSES
from bridge.reports.rules import REASON_STATUSES, TIE_PRECEDENCE
from bridge.store.sqlite.reconcile import _RECONCILE_REASONS, Reconciliation

_STATUS_LIST = "|" + "|".join(TIE_PRECEDENCE) + "|"
# The query of every entry at once, as the store ran it before (one sort of every entry).
_REFERENCE = """
WITH docs AS MATERIALIZED (
    SELECT rowid AS doc, direction || ' ' || peer AS side, type = 'manifest' AS is_manifest,
           direction = 'in' AS is_in,
           CASE WHEN json_type(meta, '$.category') = 'text'
                THEN substr(json_extract(meta, '$.category'), 1, 64) END AS category
    FROM documents WHERE type IN ('roster', 'manifest') AND (?1 IS NULL OR peer = ?1)
), per_item AS (
    SELECT d.side AS side,
           COALESCE(CASE WHEN d.is_manifest THEN substr(i.category, 1, 64) END,
                    d.category) AS category,
           MAX((d.is_manifest << 52) | (d.doc << 20)
               | (CASE WHEN i.status IS NULL THEN 0
                       ELSE COALESCE(NULLIF(instr(?2, '|' || i.status || '|'), 0), 1023) END << 1)
               | (d.is_in OR i.transport = 'delivered' OR i.status IS NOT NULL)) AS best,
           MIN(d.is_manifest) = 0 AS listed
    FROM docs d JOIN items i ON i.doc = d.doc
    GROUP BY 1, 2, CASE WHEN d.is_manifest THEN COALESCE(i.roster_record, i.item_id)
                        ELSE i.item_id END
)
SELECT side, category, listed, best >> 52, (best >> 1) & 1023, best & 1, COUNT(*)
FROM per_item GROUP BY 1, 2, 3, 4, 5, 6
"""
# The reasons as read before: each entry's row, found through items_by_status.
_REFERENCE_REASONS = _RECONCILE_REASONS.replace("items_with_reason", "items_by_status")
_CODES = {_STATUS_LIST.index(f"|{s}|") + 1: s for s in ACK_STATUSES}

KEYS = [f"P-{n}" for n in range(6)]
CATEGORIES = [None, "pow", "civilian_detainee", 7, "c" * 70]
STATUSES = [None, *ACK_STATUSES, "A_STATUS_FROM_A_NEWER_VERSION"]

entry = st.fixed_dictionaries({
    "id": st.sampled_from(KEYS),
    "category": st.sampled_from(CATEGORIES),
    "roster_record": st.sampled_from([None, None, *KEYS]),
    "status": st.sampled_from(STATUSES)})
document = st.fixed_dictionaries({
    "type": st.sampled_from(["roster", "manifest", "manifest"]),
    "direction": st.sampled_from(["out", "in"]),
    "peer": st.sampled_from(["beta", "beta", "gamma"]),
    "category": st.sampled_from(CATEGORIES),
    "transport": st.sampled_from(["queued", "sent", "delivered"]),
    "entries": st.lists(entry, max_size=8, unique_by=lambda e: e["id"]),
    "undeclared": st.booleans()})


def _record(e: dict[str, Any], doc_type: str) -> dict[str, Any]:
    """A roster's record carries the roster's category; a manifest's, its own fields."""
    fields = {"id": e["id"], "kind": "person"}
    if doc_type == "manifest":
        fields.update({k: e[k] for k in ("category", "roster_record") if e[k] is not None})
    return fields


def _build(path: Path, docs: list[dict[str, Any]]) -> Builder:
    b = Builder(path)
    for n, d in enumerate(docs):
        b.doc(f"D-{n}", [_record(e, d["type"]) for e in d["entries"]], type=d["type"],
              direction=d["direction"], peer=d["peer"],
              meta={} if d["category"] is None else {"category": d["category"]},
              statuses=[e["status"] for e in d["entries"]],
              transport=d["transport"] if d["direction"] == "out" else "unacknowledged",
              undeclared={"U-1": "RECEIVED_UNDECLARED"} if d["undeclared"] else None)
    return b


def _query(path: Path, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def _reference(path: Path, peer: str | None) -> list[tuple[Any, ...]]:
    rows = _query(path, _REFERENCE, (peer, _STATUS_LIST))
    return [(*side.split(" "), category, bool(listed), bool(manifested),
             None if code == 0 else _CODES.get(code, "UNKNOWN"), bool(reached), n)
            for side, category, listed, manifested, code, reached, n in rows]


def _counted(store: Reconciliation, peer: str | None) -> list[tuple[Any, ...]]:
    return [(i.direction, i.peer, i.category, i.listed, i.manifested, i.status, i.reached,
             i.count) for i in store.reconcile_items(peer)]


@settings(max_examples=40, deadline=None)
@given(st.lists(document, min_size=1, max_size=6))
def test_counts_by_index_equal_the_one_sort_of_every_entry(docs: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bridge.db"
        b = _build(path, docs)
        try:
            for peer in (None, "beta", "gamma"):
                assert _counted(b.store, peer) == _reference(path, peer)
                reasons = b.store.reason_counts(peer, REASON_STATUSES)
                assert [(r.direction, r.peer, r.status, r.reason, r.count)
                        for r in reasons] == _query(path, _REFERENCE_REASONS, (
                            peer, json.dumps(list(REASON_STATUSES)), 1000))
        finally:
            b.store.close()


def test_the_reference_sees_a_person_shared_by_roster_and_manifest_once(tmp_path: Path) -> None:
    # The comparison above means something only if its stores hold shared keys: here a roster
    # entry and the manifest entry naming it, and an id on both directions, are one person
    # each per side, so the entries (4) outnumber the persons (3).
    path = tmp_path / "bridge.db"
    b = _build(path, [
        {"type": "roster", "direction": "out", "peer": "beta", "category": "pow",
         "transport": "delivered", "undeclared": False,
         "entries": [{"id": "P-1", "category": None, "roster_record": None, "status": None}]},
        {"type": "manifest", "direction": "out", "peer": "beta", "category": "pow",
         "transport": "delivered", "undeclared": False,
         "entries": [{"id": "H-1", "category": None, "roster_record": "P-1",
                      "status": "RECEIVED"}, {"id": "P-2", "category": None,
                                              "roster_record": None, "status": None}]},
        {"type": "manifest", "direction": "in", "peer": "beta", "category": "pow",
         "transport": "delivered", "undeclared": False,
         "entries": [{"id": "P-1", "category": None, "roster_record": None, "status": None}]}])
    try:
        expected = [("in", "beta", "pow", False, True, None, True, 1),
                    ("out", "beta", "pow", False, True, None, True, 1),
                    ("out", "beta", "pow", True, True, "RECEIVED", True, 1)]
        assert _reference(path, None) == expected
        assert _counted(b.store, None) == expected
    finally:
        b.store.close()
