{#- The open pipeline, weighted by measured rates: each open opportunity's chance to be won
    is the product of its pipeline's conversion rates from its current stage to won (overall
    rates of fct_funnel_stage_conversion), and its expected close the median days left in
    its current stage plus the median days of the stages after it. Beside it, the CRM's
    own probability of the stage when the pipelines file gives one (amount x probability,
    the naive forecast the measured one replaces). -#}
with

open_opportunities as (
    select * from {{ ref('fct_opportunities') }}
    where status = 'open' and current_stage is not null
),

rates as (
    select
        pipeline_id,
        stage,
        stage_order,
        conversion_rate,
        coalesce(median_days_in_stage, 0) as median_days
    from {{ ref('fct_funnel_stage_conversion') }}
    where dimension = 'all'
),

pipeline_stages as (
    select pipeline_id, stage, crm_probability from {{ ref('stg_crm__sales_pipeline_stages') }}
),

from_stage as (
    -- for each stage: P(won | in stage) and the median days from entering it to closing
    select
        current_rates.pipeline_id,
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
    inner join rates as later
        on later.pipeline_id = current_rates.pipeline_id
        and later.stage_order >= current_rates.stage_order
    group by current_rates.pipeline_id, current_rates.stage
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
        end + from_stage.median_days_after_stage as expected_days_to_close,
        open_opportunities.pipeline_id,
        pipeline_stages.crm_probability,
        open_opportunities.amount * pipeline_stages.crm_probability as crm_expected_amount
    from open_opportunities
    left join from_stage
        on open_opportunities.pipeline_id = from_stage.pipeline_id
        and open_opportunities.current_stage = from_stage.stage
    left join pipeline_stages
        on open_opportunities.pipeline_id = pipeline_stages.pipeline_id
        and open_opportunities.current_stage = pipeline_stages.stage
),

dated as (
    select
        *,
        {{ dbt.dateadd('day', 'cast(ceil(expected_days_to_close) as integer)', as_of_date()) }}
            as expected_close_date
    from forecast
)

select * from dated
