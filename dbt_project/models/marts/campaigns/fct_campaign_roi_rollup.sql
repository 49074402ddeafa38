{#- Campaign results rolled up by region, channel, budget band and month of start: one row
    per dimension and value. ROI is computed on the sums, not averaged. -#}
with

campaigns as (
    select
        *,
        cast({{ dbt.date_trunc('month', 'coalesce(actual_start, planned_start)') }} as date)
            as start_month
    from {{ ref('fct_campaign_performance') }}
),

rolled_up as (
    {%- for dimension, column in [('region', 'region'), ('channel', 'channel'),
                                  ('budget_band', 'budget_band'), ('month', 'start_month')] %}
    select
        '{{ dimension }}' as dimension,
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), 'unknown') as dimension_value,
        count(*) as campaigns,
        sum(actual_cost) as actual_cost,
        sum(planned_budget) as planned_budget,
        sum(members) as members,
        sum(responders_target) as responders_target,
        sum(members_target) as members_target,
        sum(opportunities) as opportunities,
        sum(contracts) as contracts,
        sum(revenue) as revenue,
        sum(case when actual_cost is not null then revenue end) as revenue_of_costed_campaigns,
        sum(offer_adoptions) as offer_adoptions,
        sum(offer_adoption_revenue) as offer_adoption_revenue
    from campaigns
    group by 1, 2
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

rated as (
    select
        *,
        {{ safe_ratio('responders_target', 'members_target') }} as response_rate_target,
        -- ROI only over campaigns with a known cost: a running campaign has no cost yet
        {{ safe_ratio('revenue_of_costed_campaigns - actual_cost', 'actual_cost') }} as roi
    from rolled_up
)

select * from rated
