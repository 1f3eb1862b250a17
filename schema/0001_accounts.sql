-- Registered impact.com accounts and their sealed secrets. An update inserts a
-- full new row with a higher version; readers use FINAL. A delete is a row
-- with deleted = 1 (and the secret cleared).
CREATE TABLE IF NOT EXISTS accounts
(
    id String,
    persona String,
    sid String,
    auth_kind String,
    status String,
    status_reason String,
    status_at DateTime('UTC'),
    missing_permissions Array(String),
    secret_key_id String,
    secret_ciphertext String,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    deleted UInt8,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id
