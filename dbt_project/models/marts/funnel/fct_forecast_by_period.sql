{#- The forecast a sales manager reads: per close month and quarter, from the as-of date's
    period on, the open deals by forecast category (commit, best case, pipeline) with their
    amount and expected amount (fct_pipeline_forecast: measured rates, stalled deals at
    their measured rate, expected close dates from measured durations), and the deals
    already won in the current period (closed); overall and per pipeline, owner, team and
    region. -#}
with

open_deals as (
    select
        pipeline_id, owner_id, team, sales_region, forecast_category, amount,
        expected_amount, expected_close_date as close_date
    from {{ ref('fct_pipeline_forecast') }}
),

won_deals as (
    select
        pipeline_id, owner_id, team, sales_region, 'closed' as forecast_category, amount,
        amount as expected_amount, closed_at as close_date
    from {{ ref('fct_opportunities') }}
    where is_won
),

periods as (
    {%- for period in ['month', 'quarter'] %}
    select
        '{{ period }}' as period_type,
        cast({{ dbt.date_trunc(period, as_of_date()) }} as date) as current_period_start
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

deals as (
    {%- for period in ['month', 'quarter'] %}
    select
        '{{ period }}' as period_type,
        cast({{ dbt.date_trunc(period, 'close_date') }} as date) as period_start,
        deals.*
    from (
        select * from open_deals
        union all
        select * from won_deals
    ) as deals
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

in_view as (
    -- open deals from the current period on (a deal whose stage has no measured duration
    -- has no expected close date: period_start null); won deals of the current period only
    select
        deals.*,
        coalesce(deals.period_start = periods.current_period_start, false) as is_current_period
    from deals
    inner join periods on deals.period_type = periods.period_type
    where (deals.forecast_category <> 'closed'
            and (deals.period_start >= periods.current_period_start or deals.period_start is null))
        or (deals.forecast_category = 'closed' and deals.period_start = periods.current_period_start
            and deals.close_date < {{ as_of_cutoff() }})
),

rolled_up as (
    {%- for dimension, column in [('all', "'all'"), ('pipeline', 'pipeline_id'),
                                  ('owner', 'owner_id'), ('team', 'team'),
                                  ('region', 'sales_region')] %}
    select
        period_type,
        period_start,
        is_current_period,
        '{{ dimension }}' as dimension,
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), 'unknown') as dimension_value,
        forecast_category,
        count(*) as deals,
        sum(amount) as amount,
        -- decimals: a sum of doubles depends on the row order
        cast(sum(cast(expected_amount as decimal(18, 2))) as decimal(18, 2)) as expected_amount
    from in_view
    group by 1, 2, 3, 4, 5, 6
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select * from rolled_up
