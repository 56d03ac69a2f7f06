-- 2: the audit log (PROTOCOL.md §11). One record per document, envelope, transport
-- receipt, refusal or key event, appended in the transaction of the change it records.
-- As written by Bridge 0.1.0, like every migration here: never edited once released.
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
        at        INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        peer      TEXT,
        body      BLOB NOT NULL,            -- canonical msgpack map
        prev_hash BLOB NOT NULL,
        hash      BLOB NOT NULL
    );
    CREATE INDEX audit_kind ON audit(kind, peer);

