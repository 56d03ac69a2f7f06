"""Reconciliation: the report's counts, grouped in SQL over every document and item of a link
(``bridge/reports`` builds and renders the report from these rows)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bridge.core.documents import ACK_STATUSES
from bridge.reports.model import AttentionItem, DocumentCount, ItemCount, ReasonCount
from bridge.reports.rules import TIE_PRECEDENCE
from bridge.store.sqlite.rows import Repository

# Reconciliation. An item counts once per direction, peer, category and key: its id, or for a
# manifest item that names its "roster_record", that record's id. So a person on a roster and
# then in a manifest (or in a second manifest after NOT_RECEIVED) is one person, with the status
# of its highest-ranked entry: manifests above rosters, later documents above earlier ones.
#
# No sort of every entry (migration 11). Most keys belong to one entry only: such an entry is a
# person alone, listed if it is a roster's, with its own status. Those are counted per document
# and status from items_by_status, a streamed GROUP BY in index order (the counts of all
# entries, less those of the entries whose key is shared). The shared keys are found in one
# ordered pass over items_by_key, and only their entries are grouped by person (one sort of
# those alone).
# A roster entry's key is its id: its roster_record column is always NULL (the store copies the
# two fields out of manifest entries only, and the store check refuses any other value), so
# COALESCE(roster_record, item_id) is every entry's key.
#
# For the grouping, the rank, the status and whether the entry reached the peer are packed into
# one integer, and its MAX() is the item's effective entry (bits 52+: is a manifest; 20-51:
# document rowid; 1-10: status code; 0: reached).
# The category of a roster entry is its roster's meta.category (the record schemas make every
# record's own category equal to it); a manifest entry's is its own "category" field, else its
# manifest's meta.category. Those two fields of a manifest entry were copied out of its signed
# bytes when it was stored (items.category, items.roster_record: migration 4), so all of it is
# SQL. A category is cut to 64 characters: it is a label, not a record.
#
# SQLite specifics, kept in this file: JSON1 (json_type, json_extract, json_each,
# json_group_array, json_array) over the JSON columns, integer bit operators, an index on an
# expression.
# Status codes in the order of rules.TIE_PRECEDENCE: MAX() over one document's entries of one
# item picks the status that rule says, never whichever code happens to be larger.
_STATUS_LIST = "|" + "|".join(TIE_PRECEDENCE) + "|"
_STATUS_OF_CODE = {_STATUS_LIST.index(f"|{s}|") + 1: s for s in ACK_STATUSES}  # 0: none;
# 1023: a status this version does not know (reported as UNKNOWN, which counts as disputed)
_CODE = ("(CASE WHEN i.status IS NULL THEN 0 "
         "ELSE COALESCE(NULLIF(instr(?2, '|' || i.status || '|'), 0), 1023) END)")
_CATEGORY = ("COALESCE(CASE WHEN d.is_manifest THEN substr(i.category, 1, 64) END, "
             "d.category)")
_REACHED = "(d.is_in OR i.transport = 'delivered' OR i.status IS NOT NULL)"
_DOCS = """docs AS MATERIALIZED (
    SELECT rowid AS doc, direction || ' ' || peer AS side, type = 'manifest' AS is_manifest,
           direction = 'in' AS is_in,
           CASE WHEN json_type(meta, '$.category') = 'text'
                THEN substr(json_extract(meta, '$.category'), 1, 64) END AS category
    FROM documents WHERE type IN ('roster', 'manifest') AND (?1 IS NULL OR peer = ?1)
)"""
# Every entry, counted per document and status in the order of items_by_status (a streamed
# GROUP BY: no sort), then given the report's columns as a person alone: the entry is the
# person. A (document, status) range whose entries share one category (one distinct value
# and no entry without it, or none has one: COUNT(DISTINCT) keeps a tree of those few
# values, cheaper than MIN and MAX of every entry) is one count read from the index alone,
# its category from its first entry; only a range of mixed categories, and the
# entries of an outbound document with no status yet (whether they reached the peer is their
# transport state, in the row: a transport change then rewrites no index), are grouped
# by category and transport, one small sort of those entries alone. Any other entry reached
# the peer whatever its transport state (_REACHED), so that is not read (NULL).
_RECONCILE_ENTRIES = f"""
WITH {_DOCS}, ranges AS MATERIALIZED (
    SELECT doc, status, COUNT(*) AS n, COUNT(DISTINCT category) AS categories,
           COUNT(DISTINCT category) = 0 OR (COUNT(DISTINCT category) = 1
                                            AND COUNT(category) = COUNT(*)) AS uniform
    FROM items INDEXED BY items_by_status WHERE doc IN (SELECT doc FROM docs)
    GROUP BY doc, status
), counts AS (
    SELECT r.doc AS doc, CASE WHEN r.categories THEN (
               SELECT category FROM items INDEXED BY items_by_status
               WHERE doc = r.doc AND status IS r.status LIMIT 1) END AS category,
           r.status AS status, NULL AS transport, r.n AS n
    FROM ranges r CROSS JOIN docs d ON d.doc = r.doc
    WHERE r.uniform AND (r.status IS NOT NULL OR d.is_in)
    UNION ALL
    SELECT i.doc, i.category, i.status,
           CASE WHEN i.status IS NULL AND NOT d.is_in THEN i.transport END, COUNT(*)
    FROM ranges r CROSS JOIN docs d ON d.doc = r.doc
         CROSS JOIN items i INDEXED BY items_by_status ON i.doc = r.doc AND i.status IS r.status
    WHERE NOT (r.uniform AND (r.status IS NOT NULL OR d.is_in))
    GROUP BY 1, 2, 3, 4
)
SELECT d.side, {_CATEGORY}, NOT d.is_manifest, d.is_manifest, {_CODE}, {_REACHED}, i.n
FROM counts i CROSS JOIN docs d ON d.doc = i.doc
"""  # noqa: S608 (this file's constants only)
# The entries whose key is shared: as alone (tag 0, to be taken off the counts above), and
# grouped by person (tag 1).
_RECONCILE_SHARED = f"""
WITH {_DOCS}, shared AS MATERIALIZED (
    SELECT COALESCE(roster_record, item_id) AS person FROM items INDEXED BY items_by_key
    GROUP BY 1 HAVING COUNT(*) > 1
), entries AS MATERIALIZED (
    SELECT d.doc AS doc, d.side AS side, d.is_manifest AS is_manifest, s.person AS person,
           {_CATEGORY} AS category, i.category AS own_category, i.status AS status,
           i.transport AS transport,
           (d.is_manifest << 52) | (d.doc << 20) | ({_CODE} << 1) | {_REACHED} AS rank
    FROM shared s CROSS JOIN items i INDEXED BY items_by_key
         ON COALESCE(i.roster_record, i.item_id) = s.person
         CROSS JOIN docs d ON d.doc = i.doc
), per_item AS (
    SELECT side, category, MAX(rank) AS best, MIN(is_manifest) = 0 AS listed
    FROM entries GROUP BY side, category, person
)
SELECT 0, side, category, NOT is_manifest, is_manifest, (rank >> 1) & 1023, rank & 1, COUNT(*)
FROM entries GROUP BY doc, own_category, status, transport
UNION ALL
SELECT 1, side, category, listed, best >> 52, (best >> 1) & 1023, best & 1, COUNT(*)
FROM per_item GROUP BY 2, 3, 4, 5, 6, 7
"""  # noqa: S608 (this file's constants only)
# Per document: its entries by latest status. Grouped inside each document (a small sort each)
# rather than all entries at once.
_RECONCILE_DOCUMENTS = """
SELECT d.rowid, d.direction, d.peer, d.id, d.type, d.meta, d.created,
       (SELECT json_group_array(json_array(s, n)) FROM (
           SELECT status AS s, COUNT(*) AS n FROM items WHERE doc = d.rowid GROUP BY status))
FROM documents d
WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1)
ORDER BY d.rowid
"""
# The latest status of each undeclared item (acknowledgements of one document have strictly
# increasing times, so MAX(at) picks one entry).
_RECONCILE_UNDECLARED = """
SELECT item_doc, status, COUNT(*) FROM (
    SELECT a.item_doc AS item_doc, a.status AS status, MAX(a.at)
    FROM ack_entries a INDEXED BY ack_entries_undeclared JOIN documents d ON d.rowid = a.item_doc
    WHERE a.item_idx IS NULL AND d.type IN ('roster', 'manifest')
          AND (?1 IS NULL OR d.peer = ?1)
    GROUP BY a.item_doc, a.item_id)
GROUP BY item_doc, status
"""
# Reasons: per document (CROSS JOIN keeps documents the outer loop), the entries given a
# reason with the statuses asked for, read from items_with_reason alone (migration 11) rather
# than each entry's row. Items needing attention: sought in items_by_status (migration 8)
# rather than every item read.
_RECONCILE_REASONS = """
SELECT d.direction, d.peer, i.status, i.reason, COUNT(*)
FROM documents d CROSS JOIN items i INDEXED BY items_with_reason ON i.doc = d.rowid
WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1)
      AND i.reason IS NOT NULL AND i.reason != ''
      AND i.status IN (SELECT value FROM json_each(?2))
GROUP BY d.direction, d.peer, i.status, i.reason ORDER BY 5 DESC, 3, 4 LIMIT ?3
"""


_PER_DOCUMENT = ("FROM documents d CROSS JOIN items i INDEXED BY items_by_status ON i.doc = "
                 "d.rowid WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1)")
# The two ranges of items_by_status an attention count reads: no status yet, and the statuses.
_ATTENTION_COUNT = (f"SELECT (SELECT COUNT(*) {_PER_DOCUMENT} AND i.status IS NULL) + "  # noqa: S608
                    f"(SELECT COUNT(*) {_PER_DOCUMENT} AND i.status IN "
                    "(SELECT value FROM json_each(?2)))")


def _report_order(row: tuple[tuple[Any, ...], int]) -> tuple[Any, ...]:
    """The order SQLite's GROUP BY gave the rows: by side, category (none first), listed,
    manifested, status code, reached."""
    (side, category, *rest), _ = row
    return (side, category is not None, category or "", *(int(v) for v in rest))


class Reconciliation(Repository):
    """The reconciliation queries."""

    def reconcile_items(self, peer: str | None) -> list[ItemCount]:
        """Distinct items of rosters and manifests, counted in SQL: the entries alone per
        document in index order, the few that share a key grouped by person."""
        args = (peer, _STATUS_LIST)
        counts: Counter[tuple[Any, ...]] = Counter()
        for *key, n in self._conn.execute(_RECONCILE_ENTRIES, args):
            counts[tuple(key)] += n
        for grouped, *key, n in self._conn.execute(_RECONCILE_SHARED, args):
            counts[tuple(key)] += n if grouped else -n
        out = []
        for (side, category, listed, manifested, code, reached), n in sorted(
                counts.items(), key=_report_order):
            if n == 0:
                continue
            direction, _, peer_name = side.partition(" ")
            status = None if code == 0 else _STATUS_OF_CODE.get(code, "UNKNOWN")
            out.append(ItemCount(direction=direction, peer=peer_name, category=category,
                                 listed=bool(listed), manifested=bool(manifested),
                                 reached=bool(reached), status=status, count=n))
        return out

    def reconcile_documents(self, peer: str | None) -> list[DocumentCount]:
        """Each roster and manifest with its entries counted by latest status, and the items
        acknowledged although it never declared them (by their latest status)."""
        undeclared: dict[int, dict[str, int]] = {}
        for doc, status, n in self._conn.execute(_RECONCILE_UNDECLARED, (peer,)):
            undeclared.setdefault(doc, {})[status] = n
        return [DocumentCount(direction=r[1], peer=r[2], id=r[3], type=r[4],
                              meta=json.loads(r[5]), created=r[6],
                              by_status={s: n for s, n in json.loads(r[7])},
                              undeclared=undeclared.get(r[0], {}))
                for r in self._conn.execute(_RECONCILE_DOCUMENTS, (peer,))]

    def reason_counts(self, peer: str | None, statuses: Sequence[str],
                      limit: int = 1000) -> list[ReasonCount]:
        """Latest reasons given with ``statuses``, most frequent first."""
        return [ReasonCount(direction=r[0], peer=r[1], status=r[2], reason=r[3], count=r[4])
                for r in self._conn.execute(_RECONCILE_REASONS,
                                            (peer, json.dumps(list(statuses)), limit))]

    def attention_items(self, peer: str | None, statuses: Sequence[str],
                        limit: int) -> tuple[list[AttentionItem], int]:
        """Entries of rosters and manifests whose latest status is one of ``statuses`` or
        none yet: the first ``limit`` (by document, then position), and how many in all."""
        where = ("FROM items i JOIN documents d ON d.rowid = i.doc "
                 "WHERE d.type IN ('roster', 'manifest') AND (?1 IS NULL OR d.peer = ?1) "
                 "AND (i.status IS NULL OR i.status IN (SELECT value FROM json_each(?2)))")
        args = (peer, json.dumps(list(statuses)))
        total = int(self._conn.execute(_ATTENTION_COUNT, args).fetchone()[0])
        rows = self._conn.execute(
            f"SELECT d.direction, d.peer, d.id, i.item_id, i.status {where} "
            "ORDER BY d.rowid, i.idx LIMIT ?3", (*args, limit))
        return [AttentionItem(direction=r[0], peer=r[1], document=r[2], id=r[3], status=r[4])
                for r in rows], total

    def answers_progress(self, doc: int) -> tuple[int, int, int]:
        """How many acknowledgements answer ``doc``, the last one's row and the entries of
        them stored: what changes whenever an item's status does (documents_answers)."""
        r = self._conn.execute("SELECT COUNT(*), COALESCE(MAX(rowid), 0), "
                               "COALESCE(SUM(stored), 0) FROM documents WHERE answers = ?",
                               (doc,)).fetchone()
        return int(r[0]), int(r[1]), int(r[2])

    def audit_head(self) -> tuple[int, bytes | None]:
        """The last audit record's sequence number and hash (0, None: an empty log)."""
        r = self._conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                               ).fetchone()
        return (int(r[0]), bytes(r[1])) if r else (0, None)


__all__ = ["Reconciliation"]
