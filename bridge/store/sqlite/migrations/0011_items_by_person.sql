-- The reconciliation of a million-item link without a sort of every item
-- (bridge/store/sqlite/reconcile.py). A person is keyed by its roster record, else its id:
-- items_by_key holds that key in order, so the keys shared by more than one entry (a roster
-- entry and the manifest entry naming it, the same id on two links) are found in one pass
-- over it, and only their entries are grouped; every other entry is a person alone, counted
-- from items_by_doc_counts, whose order is the report's grouping inside each document. The
-- key's two columns follow it so that SQLite reads the key from the index alone.
CREATE INDEX items_by_key ON items(COALESCE(roster_record, item_id), roster_record, item_id);
CREATE INDEX items_by_doc_counts ON items(doc, category, status, transport);
-- The reasons the report lists, read from the index alone (a reason is given with few
-- entries, so this index is small and costs the writes of those entries only).
CREATE INDEX items_with_reason ON items(doc, status, reason) WHERE reason IS NOT NULL
    AND reason != '';
