-- 4: the two record fields reconciliation groups a manifest's entries by (PROTOCOL.md: an
-- entry is {"data": {...}, ...}; "category" and "roster_record" are fields of its record),
-- copied out of the signed entry bytes when the entry is stored (items.entry_fields), so
-- that the report is plain SQL rather than a Python function decoding msgpack inside a query.
-- NULL for rosters and for entries without such a text field. The rows already stored are
-- filled by the migration runner in the same transaction (migrate.FILLS[4]); the store check
-- compares these columns with the signed bytes, as it does the item id.
ALTER TABLE items ADD COLUMN category TEXT;
ALTER TABLE items ADD COLUMN roster_record TEXT;
