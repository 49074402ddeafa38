{#- One row per campaign: plan and actual, reach (target and control apart), responses,
    opportunities, contracts, revenue and margin credited by the default attribution model,
    offer adoptions, cost ratios and ROI (on revenue and on margin). -#}
with

campaigns as (
    select * from {{ ref('stg_crm__campaigns') }}
),

members as (
    select
        campaign_id,
        sum(case when member_group = 'target' then 1 else 0 end) as members_target,
        sum(case when member_group = 'control' then 1 else 0 end) as members_control,
        sum(case when member_group = 'target' and responded_at is not null then 1 else 0 end)
            as responders_target,
        sum(case when member_group = 'control' and responded_at is not null then 1 else 0 end)
            as responders_control
    from {{ ref('stg_crm__campaign_members') }}
    group by campaign_id
),

opportunities as (
    select
        source_campaign_id as campaign_id,
        count(*) as opportunities,
        sum(case when is_won then 1 else 0 end) as won_opportunities
    from {{ ref('fct_opportunities') }}
    where source_campaign_id is not null
    group by source_campaign_id
),

contracts as (
    -- credited under the default attribution model (var attribution_model);
    -- fct_campaign_attribution has every model side by side
    -- (shares to 6 decimals and money to the cent, as fct_campaign_attribution)
    select
        campaign_id,
        cast(sum(credit) as decimal(18, 6)) as contracts,
        cast(sum(revenue) as decimal(18, 2)) as revenue,
        cast(sum(margin) as decimal(18, 2)) as margin,
        cast(sum(case when margin is null then revenue else 0 end) as decimal(18, 2))
            as revenue_without_margin
    from {{ ref('int_contract_credits') }}
    where campaign_id is not null and attribution_model = '{{ var("attribution_model") }}'
    group by campaign_id
),

adoptions as (
    select campaign_id, count(*) as offer_adoptions, sum(amount) as offer_adoption_revenue
    from {{ ref('int_offer_adoptions_attributed') }}
    where campaign_id is not null
    group by campaign_id
),

joined as (
    select
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.channel,
        campaigns.region,
        campaigns.status,
        campaigns.objective,
        campaigns.offer_product_id,
        campaigns.planned_start,
        campaigns.planned_end,
        campaigns.actual_start,
        campaigns.actual_end,
        campaigns.planned_budget,
        campaigns.actual_cost,
        case
            when campaigns.planned_budget is null then 'unknown'
            when campaigns.planned_budget < 5000 then 'under 5k'
            when campaigns.planned_budget < 20000 then '5k-20k'
            when campaigns.planned_budget < 50000 then '20k-50k'
            else '50k and over'
        end as budget_band,
        coalesce(members.members_target, 0) as members_target,
        coalesce(members.members_control, 0) as members_control,
        coalesce(members.responders_target, 0) as responders_target,
        coalesce(members.responders_control, 0) as responders_control,
        coalesce(opportunities.opportunities, 0) as opportunities,
        coalesce(opportunities.won_opportunities, 0) as won_opportunities,
        coalesce(contracts.contracts, 0) as contracts,
        coalesce(contracts.revenue, 0) as revenue,
        -- no contracts: no margin; contracts whose products are all unknown: unknown
        case when contracts.campaign_id is null then 0 else contracts.margin end as margin,
        coalesce(contracts.revenue_without_margin, 0) as revenue_without_margin,
        '{{ var("attribution_model") }}' as attribution_model,
        coalesce(adoptions.offer_adoptions, 0) as offer_adoptions,
        coalesce(adoptions.offer_adoption_revenue, 0) as offer_adoption_revenue
    from campaigns
    left join members on campaigns.campaign_id = members.campaign_id
    left join opportunities on campaigns.campaign_id = opportunities.campaign_id
    left join contracts on campaigns.campaign_id = contracts.campaign_id
    left join adoptions on campaigns.campaign_id = adoptions.campaign_id
),

rated as (
    select
        *,
        members_target + members_control as members,
        responders_target + responders_control as responders,
        {{ safe_ratio('responders_target', 'members_target') }} as response_rate_target,
        {{ safe_ratio('responders_control', 'members_control') }} as response_rate_control,
        {{ safe_ratio('actual_cost', 'opportunities') }} as cost_per_opportunity,
        {{ safe_ratio('revenue - actual_cost', 'actual_cost') }} as roi,
        {{ safe_ratio('margin - actual_cost', 'actual_cost') }} as margin_roi
    from joined
)

select * from rated
