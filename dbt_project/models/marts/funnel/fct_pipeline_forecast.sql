{#- The open pipeline, weighted by measured rates: each open opportunity's chance to be won
    is the product of its pipeline's conversion rates from its current stage to won (overall
    rates of fct_funnel_stage_conversion), and its expected close the median days left in
    its current stage plus the median days of the stages after it. Beside it, the CRM's
    own probability of the stage when the pipelines file gives one (amount x probability,
    the naive forecast the measured one replaces).

    A deal in its stage longer than the stage's 80th percentile of days (among stays that
    ended) is stalled. Stage rates describe deals that move; a stalled deal is weighted by
    the conversion measured on stays in that stage that went beyond the same mark and
    ended (advanced, or dropped out), times the rates of the stages after it, when at
    least `stalled_min_stays` such stays are known. Measured like the stage rates, one
    step at a time, so deals still open further down the funnel do not bias it.
    Each deal falls in a forecast category (var forecast_categories): a stage mapped in
    `stages`, else commit from the `commit` probability up, best case from `best_case`,
    else pipeline. fct_forecast_by_period rolls them up by close month and quarter. -#}
{%- set categories = var('forecast_categories') %}
{%- set open_categories = ['commit', 'best case', 'pipeline'] %}
{%- if categories is not mapping
      or categories.get('commit') is not number or categories.get('commit') is sameas true
      or categories.get('commit') is sameas false
      or categories.get('best_case') is not number or categories.get('best_case') is sameas true
      or categories.get('best_case') is sameas false
      or not (0 <= categories['best_case'] <= categories['commit'] <= 1) %}
    {{ exceptions.raise_compiler_error(
        "var forecast_categories needs commit and best_case, win probabilities with "
        ~ "0 <= best_case <= commit <= 1 (from which a deal is commit or best case), and "
        ~ "optionally stages: {stage: category}; got " ~ categories) }}
{%- endif %}
{%- if var('stalled_min_deals', none) is not none %}
    {{ exceptions.raise_compiler_error(
        "var stalled_min_deals is now stalled_min_stays (stalled stays that ended, the "
        ~ "evidence behind a stalled deal's rate)") }}
{%- endif %}
{%- for stage, category in (categories.get('stages') or {}).items() %}
    {%- if category not in open_categories %}
        {{ exceptions.raise_compiler_error(
            "var forecast_categories.stages maps " ~ stage ~ " to " ~ category
            ~ ", which is not a forecast category: use one of " ~ open_categories | join(', ')) }}
    {%- endif %}
{%- endfor %}
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
        coalesce(median_days_in_stage, 0) as median_days,
        p80_days_in_stage
    from {{ ref('fct_funnel_stage_conversion') }}
    where dimension = 'all'
),

stalled_history as (
    -- stays in an open stage beyond its 80th percentile that have ended: how many, and how
    -- many of them advanced (the conversion of stalled deals out of the stage)
    select
        stays.pipeline_id,
        stays.stage,
        count(*) as stalled_stays_ended,
        sum(case when stays.outcome = 'advanced' then 1 else 0 end) as stalled_stays_advanced
    from {{ ref('fct_opportunity_stages') }} as stays
    inner join rates
        on stays.pipeline_id = rates.pipeline_id and stays.stage = rates.stage
    where stays.stage_kind = 'open'
        and stays.outcome in ('advanced', 'lost', 'suspended', 'terminated')
        and stays.days_in_stage > rates.p80_days_in_stage
    group by stays.pipeline_id, stays.stage
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
        -- P(won | advanced out of the stage): the rates of the stages after it
        case
            when count(case when later.stage_order > current_rates.stage_order then 1 end)
                > count(case when later.stage_order > current_rates.stage_order
                    then later.conversion_rate end) then null
            when min(case when later.stage_order > current_rates.stage_order
                then later.conversion_rate end) = 0 then 0.0
            else exp(coalesce(sum(case when later.stage_order > current_rates.stage_order
                then ln(nullif(later.conversion_rate, 0)) end), 0))
        end as win_probability_after_stage,
        sum(case when later.stage_order > current_rates.stage_order then later.median_days else 0 end)
            as median_days_after_stage,
        max(current_rates.median_days) as median_days_in_stage,
        max(current_rates.p80_days_in_stage) as p80_days_in_stage
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
        from_stage.win_probability as stage_win_probability,
        from_stage.p80_days_in_stage,
        coalesce(
            open_opportunities.days_in_current_stage > from_stage.p80_days_in_stage, false
        ) as is_stalled,
        stalled_history.stalled_stays_ended,
        {{ safe_ratio('stalled_history.stalled_stays_advanced', 'stalled_history.stalled_stays_ended') }}
            as stalled_conversion_rate,
        {{ safe_ratio('stalled_history.stalled_stays_advanced', 'stalled_history.stalled_stays_ended') }}
            * from_stage.win_probability_after_stage as stalled_win_rate,
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
    left join stalled_history
        on open_opportunities.pipeline_id = stalled_history.pipeline_id
        and open_opportunities.current_stage = stalled_history.stage
),

weighted as (
    select
        *,
        case
            when is_stalled and stalled_stays_ended >= {{ var('stalled_min_stays') }}
                and stalled_win_rate is not null
                then 'stalled rate'
            else 'stage rates'
        end as win_probability_basis,
        case
            when is_stalled and stalled_stays_ended >= {{ var('stalled_min_stays') }}
                and stalled_win_rate is not null
                then stalled_win_rate
            else stage_win_probability
        end as win_probability
    from forecast
),

categorised as (
    select
        *,
        amount * win_probability as expected_amount,
        case
            {%- for stage, category in (categories.get('stages') or {}).items() %}
            when current_stage = {{ dbt.string_literal(stage) }} then '{{ category }}'
            {%- endfor %}
            when win_probability >= {{ categories['commit'] }} then 'commit'
            when win_probability >= {{ categories['best_case'] }} then 'best case'
            else 'pipeline'
        end as forecast_category,
        -- at the earliest the day after the as-of date, which the run has seen in full
        {{ dbt.dateadd('day', 'greatest(cast(ceil(expected_days_to_close) as integer), 1)', as_of_date()) }}
            as expected_close_date
    from weighted
)

select * from categorised
