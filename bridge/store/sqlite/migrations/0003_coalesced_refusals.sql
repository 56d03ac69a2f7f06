-- 3: refusals no peer is accountable for are coalesced, one row per source, reason and
-- hour with a count (Store.record_refusal), so that a month of garbage cannot fill a disk.
-- Like every migration here: never edited once released.
    ALTER TABLE refusals ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE refusals ADD COLUMN last_at INTEGER;
    ALTER TABLE refusals ADD COLUMN source TEXT;
    ALTER TABLE refusals ADD COLUMN bucket TEXT;
    CREATE UNIQUE INDEX refusals_bucket ON refusals(bucket);

