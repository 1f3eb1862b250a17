-- View for analysts: per account, day, currency and media partner, the
-- actions and money by state, with the partner's name and state from the
-- media_partners catalog (the name on the actions when the catalog lacks the
-- partner). One row per day so that any date range is a WHERE on day (or
-- local_day) and a SUM. Built on attribution_daily. See docs/analysts.md.
CREATE VIEW IF NOT EXISTS partner_performance AS
SELECT
    account_id,
    day,
    local_day,
    currency,
    media_partner_id,
    if(catalog_name != '', catalog_name, action_partner_name) AS partner_name,
    catalog_state AS partner_state,
    n_actions AS actions,
    n_approved AS approved_actions,
    n_pending AS pending_actions,
    n_reversed AS reversed_actions,
    s_sale_amount AS sale_amount,
    s_approved_sale_amount AS approved_sale_amount,
    s_pending_sale_amount AS pending_sale_amount,
    s_payout AS payout,
    s_approved_payout AS approved_payout,
    s_pending_payout AS pending_payout,
    s_reversed_amount AS reversed_amount,
    s_reversed_payout AS reversed_payout
FROM
(
    SELECT
        account_id,
        day,
        local_day,
        currency,
        media_partner_id,
        argMax(media_partner_name, day) AS action_partner_name,
        sum(actions) AS n_actions,
        sumIf(actions, state = 'APPROVED') AS n_approved,
        sumIf(actions, state = 'PENDING') AS n_pending,
        sumIf(actions, state = 'REVERSED') AS n_reversed,
        sum(sale_amount) AS s_sale_amount,
        sumIf(sale_amount, state = 'APPROVED') AS s_approved_sale_amount,
        sumIf(sale_amount, state = 'PENDING') AS s_pending_sale_amount,
        sum(payout) AS s_payout,
        sumIf(payout, state = 'APPROVED') AS s_approved_payout,
        sumIf(payout, state = 'PENDING') AS s_pending_payout,
        sum(reversed_amount) AS s_reversed_amount,
        sum(reversed_payout) AS s_reversed_payout
    FROM attribution_daily
    GROUP BY
        account_id,
        day,
        local_day,
        currency,
        media_partner_id
) AS performance
ANY LEFT JOIN
(
    SELECT
        account_id,
        id AS media_partner_id,
        name AS catalog_name,
        state AS catalog_state
    FROM media_partners FINAL
) AS catalog_partners USING (account_id, media_partner_id)
