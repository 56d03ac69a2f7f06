CREATE TABLE item_counts (
    doc   INTEGER NOT NULL,
    key   TEXT NOT NULL,
    acked INTEGER NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (doc, key, acked)
) WITHOUT ROWID;
CREATE TRIGGER item_counts_insert AFTER INSERT ON items BEGIN
    INSERT INTO item_counts(doc, key, acked, n)
        VALUES (new.doc, COALESCE(new.status, new.transport), new.status IS NOT NULL, 1)
        ON CONFLICT(doc, key, acked) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER item_counts_update AFTER UPDATE OF status, transport ON items
    WHEN COALESCE(old.status, old.transport) IS NOT COALESCE(new.status, new.transport)
      OR (old.status IS NULL) != (new.status IS NULL)
BEGIN
    UPDATE item_counts SET n = n - 1
        WHERE doc = old.doc AND key = COALESCE(old.status, old.transport)
          AND acked = (old.status IS NOT NULL);
    INSERT INTO item_counts(doc, key, acked, n)
        VALUES (new.doc, COALESCE(new.status, new.transport), new.status IS NOT NULL, 1)
        ON CONFLICT(doc, key, acked) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER item_counts_delete AFTER DELETE ON items BEGIN
    UPDATE item_counts SET n = n - 1
        WHERE doc = old.doc AND key = COALESCE(old.status, old.transport)
          AND acked = (old.status IS NOT NULL);
END;
