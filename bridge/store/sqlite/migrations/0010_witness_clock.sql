-- Each witness's latest clock reading (bridge/engine/witnessed_time.py, PROTOCOL.md §13.9):
-- our clock when we signed the checkpoint it last cosigned, and the time in that cosignature.
-- Kept apart from ``cosignatures``, which holds a size's first cosignature (the earliest time,
-- the tightest bound for receipts): a quiet log's same checkpoint cosigned again refreshes the
-- reading here and leaves that evidence as it was.
CREATE TABLE witness_clock (
    witness   TEXT PRIMARY KEY,
    ours      INTEGER NOT NULL,
    timestamp INTEGER NOT NULL
);
