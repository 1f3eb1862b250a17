-- View for analysts: per account, day, currency, campaign and promo code (the
-- code on the action), the actions and money by state, with the code's
-- details from the promo_codes catalog (matched on campaign and exact code;
-- empty when nothing matches, e.g. a regex code). One row per day so that any
-- date range is a WHERE on day (or local_day) and a SUM. Built on
-- attribution_daily. See docs/analysts.md.
CREATE VIEW IF NOT EXISTS promo_code_performance AS
SELECT
    account_id,
    day,
    local_day,
    currency,
    campaign_id,
    action_campaign_name AS campaign_name,
    promo_code,
    catalog_id AS promo_code_id,
    catalog_entries,
    catalog_state AS promo_code_state,
    catalog_credit_policy AS credit_policy,
    catalog_partner_id AS assigned_partner_id,
    catalog_partner_name AS assigned_partner_name,
    catalog_deal_name AS deal_name,
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
        campaign_id,
        argMax(campaign_name, day) AS action_campaign_name,
        promo_code,
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
    WHERE promo_code != ''
    GROUP BY
        account_id,
        day,
        local_day,
        currency,
        campaign_id,
        promo_code
) AS performance
ANY LEFT JOIN
(
    SELECT
        account_id,
        code_campaign_id AS campaign_id,
        code_text AS promo_code,
        catalog_id,
        catalog_entries,
        catalog_state,
        catalog_credit_policy,
        catalog_partner_id,
        catalog_partner_name,
        catalog_deal_name
    FROM
    (
        SELECT
            account_id,
            if(campaign_id != '', campaign_id, program_id) AS code_campaign_id,
            code AS code_text,
            min(id) AS catalog_id,
            count() AS catalog_entries,
            argMin(state, id) AS catalog_state,
            argMin(if(credit_policy != '', credit_policy, credit_rule), id) AS catalog_credit_policy,
            argMin(assigned_partner_id, id) AS catalog_partner_id,
            argMin(assigned_partner_name, id) AS catalog_partner_name,
            argMin(deal_name, id) AS catalog_deal_name
        FROM promo_codes FINAL
        GROUP BY
            account_id,
            code_campaign_id,
            code_text
    ) AS codes
) AS catalog_codes USING (account_id, campaign_id, promo_code)
