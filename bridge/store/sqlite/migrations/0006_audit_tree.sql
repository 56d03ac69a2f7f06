-- 5: the audit log as an RFC 9162 Merkle tree (PROTOCOL.md §12.1), and what the witnesses
-- said of it. Leaf i is the record bytes of audit record seq = i + 1. audit_tree holds each
-- complete subtree (2^level leaves from leaf idx * 2^level), written once, in the
-- transaction that appends its last leaf: every root and proof at any size is read from
-- these rows. The rows for records already logged are filled by the migration runner in
-- the same transaction (migrate.FILLS[5]).
CREATE TABLE audit_tree (
    level INTEGER NOT NULL CHECK (level >= 0),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
-- Every checkpoint the party signed, and every cosignature a pinned witness returned for one
-- (a C2SP cosignature/v1 line, kept whole so that it verifies again offline).
CREATE TABLE checkpoints (
    size   INTEGER PRIMARY KEY CHECK (size >= 1),
    root   BLOB NOT NULL,
    note   BLOB NOT NULL,
    at     INTEGER NOT NULL
);
CREATE TABLE cosignatures (
    witness   TEXT NOT NULL,
    size      INTEGER NOT NULL REFERENCES checkpoints(size),
    timestamp INTEGER NOT NULL,
    line      BLOB NOT NULL,
    PRIMARY KEY (witness, size)
);
