-- 7: the witnessed checkpoints exchanged with each peer (PROTOCOL.md §13.7).
-- checkpoints_sent: per peer, the last checkpoint envelope queued (its outbox seq, size, and
-- the last of our records it carried) and the last one the peer accepted: the next proof is
-- from the accepted size, and records are carried from the accepted point on (a refused
-- envelope's records were not kept by the peer).
CREATE TABLE checkpoints_sent (
    peer                TEXT PRIMARY KEY,
    envelope_seq        INTEGER NOT NULL,
    size                INTEGER NOT NULL,
    records_to          INTEGER NOT NULL,
    accepted_size       INTEGER NOT NULL,
    accepted_records_to INTEGER NOT NULL,
    at                  INTEGER NOT NULL
);
-- Each checkpoint of a peer's log accepted from it, as it came (its signature and every
-- cosignature line), and the witnesses pinned here whose cosignature on it verified.
CREATE TABLE peer_checkpoints (
    peer         TEXT NOT NULL,
    origin       TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    root         BLOB NOT NULL,
    note         BLOB NOT NULL,
    witnessed_by TEXT NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (peer, origin, size)
);
-- The peer's audit records about us that came with them, each with its inclusion proof in
-- the checkpoint of that size (the proof's hashes concatenated).
CREATE TABLE peer_log_records (
    peer    TEXT NOT NULL,
    origin  TEXT NOT NULL,
    idx     INTEGER NOT NULL CHECK (idx >= 0),
    size    INTEGER NOT NULL,
    digest  BLOB NOT NULL,
    record  BLOB NOT NULL,
    proof   BLOB NOT NULL,
    PRIMARY KEY (peer, origin, idx)
);
CREATE INDEX peer_log_records_digest ON peer_log_records(digest);
-- A split view: the checkpoint kept and the one that does not extend it, both signed by the
-- peer, kept as evidence.
CREATE TABLE peer_log_conflicts (
    id           INTEGER PRIMARY KEY,
    peer         TEXT NOT NULL,
    origin       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    stored_note  BLOB,
    offered_note BLOB NOT NULL,
    at           INTEGER NOT NULL
);
-- The largest (and the smallest covering) cosigned checkpoint is found by size, whichever
-- witness cosigned it.
CREATE INDEX cosignatures_size ON cosignatures(size);
