-- Incremental watermarks per account, entity, campaign ('' for account-wide)
-- and scan kind. Read with argMax(watermark, version).
CREATE TABLE IF NOT EXISTS sync_state
(
    account_id String,
    entity String,
    campaign_id String,
    scan String,
    watermark DateTime('UTC'),
    updated_at DateTime('UTC'),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (account_id, entity, campaign_id, scan)
