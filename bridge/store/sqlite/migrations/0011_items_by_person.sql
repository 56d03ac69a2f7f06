-- The reconciliation of a million-item link without a sort of every item
-- (bridge/store/sqlite/reconcile.py). A person is keyed by its roster record, else its id:
-- items_by_key holds that key in order, so the keys shared by more than one entry (a roster
-- entry and the manifest entry naming it, the same id on two links) are found in one pass
-- over it, and only their entries are grouped; every other entry is a person alone, counted
-- from items_by_status. The key's two columns follow it so that SQLite reads the key from the
-- index alone.
CREATE INDEX items_by_key ON items(COALESCE(roster_record, item_id), roster_record, item_id);
-- items_by_status (migration 8) again, with the entry's category after its key: the counts
-- of each document by status and category are read from this one index, which an
-- acknowledgement rewrites anyway, so a status update costs no second index (and a
-- transport change none: the reconciliation reads the transport state of the few entries
-- with no status yet from their rows). The key's order is unchanged: a page of one status
-- is still a seek and a keyset range of idx.
DROP INDEX items_by_status;
CREATE INDEX items_by_status ON items(doc, status, idx, category);
-- The reasons the report lists, read from the index alone (a reason is given with few
-- entries, so this index is small and costs the writes of those entries only).
CREATE INDEX items_with_reason ON items(doc, status, reason) WHERE reason IS NOT NULL
    AND reason != '';
-- A document found by its id alone (an acknowledgement's answered document, the local API's
-- /v1/documents/{id}): the unique index starts with direction and peer, so without this one
-- each lookup read every document of the store, a cost that grew with its history.
CREATE INDEX documents_by_id ON documents(id);
