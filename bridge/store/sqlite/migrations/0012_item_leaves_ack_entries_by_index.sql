-- 12: an item's entry bytes out of the row an acknowledgement rewrites, and its acknowledgement
-- entries indexed by its index, not its id. SQLite stores a row as one record and an UPDATE
-- writes the whole record again (https://sqlite.org/fileformat2.html, "B-tree Pages" and
-- "Record Format"): a status or transport change of an item rewrote
-- its ~220-byte signed entry with it, for each of the hundreds of thousands an acknowledgement
-- of all items names, on both sides. The entry bytes, written once and never changed, move to
-- item_leaves under the same key (doc, idx), inserted in key order beside the item; the
-- narrow items row keeps what changes (transport, status) and what the indexes and the
-- acknowledgement's matching read (item id, leaf hash, the two record fields). Measured
-- (bench/index_writes.py, 100,000 items): the status updates 25-31 % less CPU, the transport
-- changes 44 % less, for 10-14 % more on the insert. No foreign key: each would cost a probe
-- per row; the store check reads every item with its entry and reports one without.
CREATE TABLE item_leaves (
    doc  INTEGER NOT NULL,
    idx  INTEGER NOT NULL,
    leaf BLOB NOT NULL,                 -- the entry bytes as signed
    PRIMARY KEY (doc, idx)
) WITHOUT ROWID;
INSERT INTO item_leaves (doc, idx, leaf) SELECT doc, idx, leaf FROM items ORDER BY doc, idx;
ALTER TABLE items DROP COLUMN leaf;
-- An item's acknowledgement entries found by the item's index rather than its id. Item ids
-- come in no order (a registry's numbers, names), so ack_entries_item (item_doc, item_id) took
-- each entry of an acknowledgement of all items at a random place: a page of that index per
-- entry, thousands of pages written again at each commit. Entries of an acknowledgement name
-- items mostly in index order, so this index is written where the last entry went. Measured,
-- 1,000,000 entries with ids in no order, a commit per 5,000: 6.8 s of CPU to insert, 1.4 s
-- this way (100,000: 0.37 s, 0.14 s). An item's history is its declared entries by index (the
-- item's id gives its index in items_by_id) and its undeclared ones, few, read in
-- ack_entries_undeclared; a document's entries are still a range of the first column. The
-- entries with no declared item sort first in it (NULL).
DROP INDEX ack_entries_item;
CREATE INDEX ack_entries_declared ON ack_entries(item_doc, item_idx);
-- Like every migration here: never edited once released.
