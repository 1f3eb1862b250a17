-- View for analysts: actions summed per account, event day, campaign, media
-- partner, promo code, referring type, state and currency. day is the UTC
-- date of the event; local_day is the date at the account's standard-time
-- offset, parsed from company_information.timezone ("(GMT -08:00) Pacific
-- Time ..."), UTC when unknown; utc_offset_minutes says which offset applied.
-- Built on actions_current, so each action counts once, in its latest state.
-- See docs/analysts.md.
CREATE VIEW IF NOT EXISTS attribution_daily AS
SELECT
    account_id,
    toDate(a_event_date, 'UTC') AS day,
    toDate(a_event_date + utc_offset_minutes * 60, 'UTC') AS local_day,
    utc_offset_minutes,
    campaign_id,
    argMax(a_campaign_name, a_creation_date) AS campaign_name,
    media_partner_id,
    argMax(a_media_partner_name, a_creation_date) AS media_partner_name,
    promo_code,
    referring_type,
    state,
    currency,
    count() AS actions,
    sum(a_amount) AS sale_amount,
    sum(a_payout) AS payout,
    sum(a_reversed_amount) AS reversed_amount,
    sum(a_reversed_payout) AS reversed_payout
FROM
(
    SELECT
        account_id,
        event_date AS a_event_date,
        creation_date AS a_creation_date,
        campaign_id,
        campaign_name AS a_campaign_name,
        media_partner_id,
        media_partner_name AS a_media_partner_name,
        promo_code,
        referring_type,
        state,
        currency,
        amount AS a_amount,
        payout AS a_payout,
        reversed_amount AS a_reversed_amount,
        reversed_payout AS a_reversed_payout,
        utc_offset_minutes
    FROM actions_current
    ANY LEFT JOIN
    (
        SELECT
            account_id,
            toInt32(if(extract(timezone, '^[(](?:GMT|UTC) ?([+-])') = '-', -1, 1)
                * (toInt32OrZero(extract(timezone, '^[(](?:GMT|UTC) ?[+-]([0-9]{1,2})')) * 60
                   + toInt32OrZero(extract(timezone, '^[(](?:GMT|UTC) ?[+-][0-9]{1,2}:([0-9]{2})')))) AS utc_offset_minutes
        FROM company_information FINAL
    ) AS company USING account_id
) AS action_rows
GROUP BY
    account_id,
    day,
    local_day,
    utc_offset_minutes,
    campaign_id,
    media_partner_id,
    promo_code,
    referring_type,
    state,
    currency
