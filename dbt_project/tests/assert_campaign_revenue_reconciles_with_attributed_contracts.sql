-- Campaign contracts, revenue and margin are exactly what the default attribution model
-- credits to known campaigns.
with campaigns as (
    select
        sum(revenue) as revenue,
        sum(contracts) as contracts,
        coalesce(sum(margin), 0) as margin,
        count(*) as campaigns
    from {{ ref('fct_campaign_performance') }}
),
credited as (
    select
        coalesce(sum(revenue), 0) as revenue,
        coalesce(sum(credit), 0) as contracts,
        coalesce(sum(margin), 0) as margin
    from {{ ref('int_contract_credits') }}
    where attribution_model = '{{ var("attribution_model") }}'
        and campaign_id in (select campaign_id from {{ ref('stg_crm__campaigns') }})
)
select *
from campaigns cross join credited
-- each campaign's figures are rounded (shares to 6 decimals, money to the cent)
where abs(campaigns.revenue - credited.revenue) > 0.005 * campaigns.campaigns + 1e-6
    or abs(campaigns.contracts - credited.contracts) > 0.0000005 * campaigns.campaigns + 1e-9
    or abs(campaigns.margin - credited.margin) > 0.005 * campaigns.campaigns + 1e-6
