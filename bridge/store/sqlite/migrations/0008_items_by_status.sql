-- Version 11: queries at scale (a document of a million items).
-- The items of a document by their latest acknowledgement status, in index order: a page of
-- one status is a seek and a keyset range (idx > the cursor), never a scan of the document
-- (local-api.yaml, listItems); the counts by status read this index, not the entries. Items
-- with no status yet are its NULL range, listed by their transport state.
CREATE INDEX items_by_status ON items(doc, status, idx);
-- The items acknowledged although never declared: few, and read (latest first) by every
-- summary and acknowledgement of their document, which had to read its whole history.
CREATE INDEX ack_entries_undeclared ON ack_entries(item_doc, at, ack, idx)
    WHERE item_idx IS NULL;
