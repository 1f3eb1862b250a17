-- One row per entity run of an account: written as running when it starts and
-- again with the outcome when it ends (same key, higher version).
CREATE TABLE IF NOT EXISTS sync_runs
(
    run_id String,
    account_id String,
    entity String,
    kind String,
    started_at DateTime('UTC'),
    finished_at DateTime('UTC'),
    status String,
    rows UInt64,
    requests UInt64,
    rate_limit_waits UInt64,
    windows UInt64,
    error String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(started_at)
ORDER BY (account_id, entity, started_at, run_id)
