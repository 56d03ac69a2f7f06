-- 5: the cost of an envelope does not grow with the link's history. A finished envelope's
-- sealed bytes (delivered or refused: it has the peer's receipt) move out of the outbox into
-- outbox_sent, where only a transcript (PROTOCOL.md §11.4) and a rewind after a gap read them;
-- the outbox row keeps an empty envelope, so a scan of the outbox never reads past a
-- finished envelope's bytes (SQLite stores a row's columns in order, the envelope before its
-- state). Counting a document's pending envelopes reads the index alone (outbox_doc_pending
-- holds the state too: a pending row's state comes after its envelope, megabytes of it).
-- Like every migration here: never edited once released.
CREATE TABLE outbox_sent (
    peer      TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    envelope  BLOB NOT NULL,
    PRIMARY KEY (peer, seq)
);
INSERT INTO outbox_sent (peer, seq, envelope)
    SELECT peer, seq, envelope FROM outbox WHERE state != 'pending';
UPDATE outbox SET envelope = x'' WHERE state != 'pending';
CREATE INDEX outbox_doc_pending ON outbox(doc, state) WHERE state = 'pending';
