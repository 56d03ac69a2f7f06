-- 1: documents and their items, acknowledgement entries, each link's outbox and inbox,
-- refusals and events. As written by Bridge 0.1.0, like every migration here: never edited
-- once released. SQLite keeps each CREATE statement's text in sqlite_master, indentation
-- included, so a new store's schema reads as an upgraded one's only if this text never
-- changes (tests/test_store_upgrade.py compares them).
    CREATE TABLE documents (
        rowid     INTEGER PRIMARY KEY,
        id        TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
        peer      TEXT NOT NULL,
        type      TEXT NOT NULL CHECK (type IN ('roster', 'manifest', 'ack')),
        digest    BLOB NOT NULL UNIQUE,
        header    BLOB NOT NULL,
        sig       BLOB NOT NULL,
        count     INTEGER NOT NULL,
        stored    INTEGER NOT NULL DEFAULT 0,   -- entries stored so far (inbound chunks)
        answers   INTEGER REFERENCES documents(rowid),  -- ack: the answered document
        meta      TEXT NOT NULL,
        created   INTEGER NOT NULL,
        state     TEXT NOT NULL,
        updated   INTEGER NOT NULL,
        UNIQUE (direction, peer, id)
    );
    CREATE INDEX documents_answers ON documents(answers);
    -- Declared items of rosters and manifests, in both directions.
    CREATE TABLE items (
        doc       INTEGER NOT NULL REFERENCES documents(rowid),
        idx       INTEGER NOT NULL,
        item_id   TEXT NOT NULL,
        leaf      BLOB NOT NULL,            -- the entry bytes as signed
        lh        BLOB NOT NULL,            -- its RFC 9162 leaf hash
        transport TEXT NOT NULL,            -- queued | sent | delivered (out), unacknowledged (in)
        status    TEXT,                     -- latest acknowledgement status
        reason    TEXT,
        evidence  TEXT,
        status_at INTEGER,
        PRIMARY KEY (doc, idx)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX items_by_id ON items(doc, item_id);
    -- Entries of acknowledgement documents: the full history of every item, never overwritten.
    CREATE TABLE ack_entries (
        ack       INTEGER NOT NULL REFERENCES documents(rowid),
        idx       INTEGER NOT NULL,
        item_doc  INTEGER NOT NULL REFERENCES documents(rowid),
        item_idx  INTEGER,                  -- NULL for RECEIVED_UNDECLARED
        item_id   TEXT NOT NULL,
        status    TEXT NOT NULL,
        reason    TEXT,
        evidence  TEXT,
        leaf      BLOB NOT NULL,
        at        INTEGER NOT NULL,
        PRIMARY KEY (ack, idx)
    ) WITHOUT ROWID;
    CREATE INDEX ack_entries_item ON ack_entries(item_doc, item_id);
    CREATE TABLE outbox (
        peer      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        msg_id    BLOB NOT NULL,
        digest    BLOB NOT NULL,
        envelope  BLOB NOT NULL,
        kind      TEXT NOT NULL,
        doc       INTEGER REFERENCES documents(rowid),
        first     INTEGER,
        n         INTEGER,
        state     TEXT NOT NULL,            -- pending | delivered | refused
        attempts  INTEGER NOT NULL DEFAULT 0,
        created   INTEGER NOT NULL,
        done_at   INTEGER,
        receipt   BLOB,
        PRIMARY KEY (peer, seq)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_pending ON outbox(peer, state, seq);
    CREATE TABLE inbox (
        peer      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        msg_id    BLOB NOT NULL,
        digest    BLOB NOT NULL,
        header    BLOB NOT NULL,
        kind      TEXT NOT NULL,
        result    TEXT NOT NULL,            -- accepted | refused
        receipt   BLOB NOT NULL,
        at        INTEGER NOT NULL,
        PRIMARY KEY (peer, seq)
    ) WITHOUT ROWID;
    CREATE TABLE refusals (
        rowid     INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        peer      TEXT,
        seq       INTEGER,
        digest    BLOB,
        reason    TEXT NOT NULL,
        detail    TEXT NOT NULL,
        alarm     INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE events (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        type      TEXT NOT NULL,
        data      TEXT NOT NULL
    );
