-- At most one run per account at a time, across the daemon and CLI backfills:
-- the row with the highest version names the holder until expires_at.
CREATE TABLE IF NOT EXISTS account_leases
(
    account_id String,
    holder String,
    acquired_at DateTime('UTC'),
    expires_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY account_id
