{#- The open pipeline, weighted by measured rates: each open opportunity's chance to be won
    is the product of the conversion rates from its current stage to won (overall rates of
    fct_funnel_stage_conversion), and its expected close the median days left in its
    current stage plus the median days of the stages after it. The contract has no CRM
    probability field, so there is no naive amount x probability view to compare with. -#}
with

open_opportunities as (
    select * from {{ ref('fct_opportunities') }}
    where status = 'open' and current_stage is not null
),

rates as (
    select stage, stage_order, conversion_rate, coalesce(median_days_in_stage, 0) as median_days
    from {{ ref('fct_funnel_stage_conversion') }}
    where dimension = 'all'
),

from_stage as (
    -- for each stage: P(won | in stage) and the median days from entering it to closing
    select
        current_rates.stage,
        case
            -- a stage nobody has left yet has no measured rate: no estimate
            when count(later.conversion_rate) < count(*) then null
            when min(later.conversion_rate) = 0 then 0.0
            -- nullif keeps PostgreSQL from evaluating ln(0) before the case above
            else exp(sum(ln(nullif(later.conversion_rate, 0))))
        end as win_probability,
        sum(case when later.stage_order > current_rates.stage_order then later.median_days else 0 end)
            as median_days_after_stage,
        max(current_rates.median_days) as median_days_in_stage
    from rates as current_rates
    inner join rates as later on later.stage_order >= current_rates.stage_order
    group by current_rates.stage
),

forecast as (
    select
        open_opportunities.opportunity_id,
        open_opportunities.customer_id,
        open_opportunities.owner_id,
        open_opportunities.team,
        open_opportunities.sales_region,
        open_opportunities.source_campaign_id,
        open_opportunities.current_stage,
        open_opportunities.days_in_current_stage,
        open_opportunities.amount,
        from_stage.win_probability,
        open_opportunities.amount * from_stage.win_probability as expected_amount,
        case
            when from_stage.median_days_in_stage > open_opportunities.days_in_current_stage
                then from_stage.median_days_in_stage - open_opportunities.days_in_current_stage
            else 0
        end + from_stage.median_days_after_stage as expected_days_to_close
    from open_opportunities
    left join from_stage on open_opportunities.current_stage = from_stage.stage
),

dated as (
    select
        *,
        {{ dbt.dateadd('day', 'cast(ceil(expected_days_to_close) as integer)', as_of_date()) }}
            as expected_close_date
    from forecast
)

select * from dated
