{#- Contracts, revenue and margin each campaign earns under every attribution model
    (int_contract_credits), one row per model and campaign, plus one row per model for the
    share no campaign earned (campaign_id null). Under each model the rows add up to every
    contract signed by the as-of date (tests/assert_attribution_models_reconcile.sql). -#}
with

credits as (
    select * from {{ ref('int_contract_credits') }}
),

campaigns as (
    select campaign_id, campaign_name, channel, region
    from {{ ref('stg_crm__campaigns') }}
),

by_campaign as (
    select
        attribution_model,
        campaign_id,
        -- shares to 6 decimals and money to the cent: floating point sums of shares give
        -- the same figures whatever order they are added in
        cast(sum(credit) as decimal(18, 6)) as contracts,
        count(*) as contracts_touched,
        cast(sum(revenue) as decimal(18, 2)) as revenue,
        cast(sum(margin) as decimal(18, 2)) as margin,
        cast(sum(case when margin is null then revenue else 0 end) as decimal(18, 2))
            as revenue_without_margin
    from credits
    group by attribution_model, campaign_id
),

totals as (
    select attribution_model, sum(revenue) as total_revenue
    from by_campaign
    group by attribution_model
)

select
    by_campaign.attribution_model,
    by_campaign.attribution_model = '{{ var("attribution_model") }}' as is_default_model,
    by_campaign.campaign_id,
    case
        when by_campaign.campaign_id is null then '(no campaign)'
        else coalesce(campaigns.campaign_name, by_campaign.campaign_id)
    end as campaign_name,
    campaigns.channel,
    campaigns.region,
    by_campaign.contracts,
    by_campaign.contracts_touched,
    by_campaign.revenue,
    by_campaign.margin,
    by_campaign.revenue_without_margin,
    {{ safe_ratio('by_campaign.revenue', 'totals.total_revenue') }} as revenue_share
from by_campaign
inner join totals on by_campaign.attribution_model = totals.attribution_model
left join campaigns on by_campaign.campaign_id = campaigns.campaign_id
