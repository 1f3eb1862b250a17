-- View for operators and dashboards: one row per registered account (deleted
-- ones hidden) and entity it syncs, with the account's status, reason and
-- missing permissions, the last successful sync of the entity, its freshness
-- in minutes (NULL until a first success), the latest run's outcome and
-- error, and the rows loaded in the last 24 hours. The entity list mirrors
-- internal/syncer.AllEntities (media_partners is brand-only); a new entity
-- needs a new migration that recreates this view. See docs/analysts.md.
CREATE VIEW IF NOT EXISTS account_health AS
SELECT
    account_id,
    persona,
    sid,
    auth_kind,
    status,
    status_reason,
    status_at,
    missing_permissions,
    entity,
    if(r_last_success_at = toDateTime(0, 'UTC'), NULL, r_last_success_at) AS last_success_at,
    if(r_last_success_at = toDateTime(0, 'UTC'), NULL,
       intDiv(toInt64(toUInt32(now())) - toInt64(toUInt32(r_last_success_at)), 60)) AS freshness_minutes,
    if(r_last_run_at = toDateTime(0, 'UTC'), NULL, r_last_run_at) AS last_run_at,
    r_last_run_status AS last_run_status,
    r_last_run_error AS last_run_error,
    r_rows_24h AS rows_loaded_24h,
    r_failed_24h AS failed_runs_24h
FROM
(
    SELECT
        id AS account_id,
        persona,
        sid,
        auth_kind,
        status,
        status_reason,
        status_at,
        missing_permissions,
        arrayJoin(['company_information', 'campaigns', 'media_partners', 'promo_codes', 'actions', 'action_updates']) AS entity
    FROM accounts FINAL
    WHERE deleted = 0 AND NOT (persona = 'partner' AND entity = 'media_partners')
) AS registered
ANY LEFT JOIN
(
    SELECT
        account_id,
        entity,
        maxIf(finished_at, status = 'succeeded') AS r_last_success_at,
        max(started_at) AS r_last_run_at,
        argMax(status, version) AS r_last_run_status,
        argMax(error, version) AS r_last_run_error,
        sumIf(`rows`, finished_at >= now() - 86400) AS r_rows_24h,
        countIf(status = 'failed' AND started_at >= now() - 86400) AS r_failed_24h
    FROM sync_runs FINAL
    GROUP BY
        account_id,
        entity
) AS runs USING (account_id, entity)
