-- The signed mark of the last complete store check (bridge/engine/check_mark.py): what the
-- daemon found to be what was signed, so the check at start reads only what came after it,
-- and the whole check runs beside the daemon's work (SECURITY.md, "A damaged store"). One row;
-- its signature by the party's own key is what makes it worth anything.
CREATE TABLE store_check_mark (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    body BLOB NOT NULL,
    sig  BLOB NOT NULL
);
