{#- How good past forecasts were: for each past as-of date in fct_pipeline_snapshots, the
    month and quarter it fell in (horizon 0) and the next ones (horizon 1), once that
    period has ended, the forecast made that day against what was won in the period, per
    forecast category and in total. A month-end snapshot's horizon 1 is the forecast a
    manager starts the next month with.

    - an open category (commit, best case, pipeline): the deals of the snapshot expected
      to close in the period; forecast = their expected amount; actual = the amount of
      those deals won within the period; eventually_won_amount = won by the as-of date,
      whenever (the win probabilities' calibration, apart from the close-date timing);
    - closed: deals won in the period up to the snapshot date (forecast = actual);
    - total: closed plus the open categories' forecast, against everything won in the
      period, including deals created after the snapshot.
    error = forecast - actual; bias = error / actual (positive: the forecast was too
    high); absolute_percentage_error = |error| / actual.
    Snapshots from dates after this run's as-of date are not read (point in time). -#}
with

snapshots as (
    select * from {{ ref('fct_pipeline_snapshots') }}
    where as_of_date < {{ as_of_date() }}
),

deals as (
    select opportunity_id, amount, is_won, closed_at from {{ ref('fct_opportunities') }}
),

periods as (
    -- each snapshot date's month and quarter (horizon 0) and the next ones (horizon 1),
    -- once they have ended by the as-of date (in months: PostgreSQL has no quarter
    -- interval)
    select distinct as_of_date, period_type, horizon, period_start, period_end
    from (
        {%- for period, months in [('month', 1), ('quarter', 3)] %}
        {%- for horizon in [0, 1] %}
        select
            as_of_date,
            '{{ period }}' as period_type,
            {{ horizon }} as horizon,
            cast({{ dbt.dateadd('month', months * horizon, dbt.date_trunc(period, 'as_of_date')) }}
                as date) as period_start,
            cast({{ dbt.dateadd('month', months * (horizon + 1), dbt.date_trunc(period, 'as_of_date')) }}
                as date) as period_end
        from snapshots
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    ) as candidate
    where period_end <= cast({{ as_of_cutoff() }} as date)
),

open_forecast as (
    select
        periods.as_of_date,
        periods.period_type,
        periods.horizon,
        periods.period_start,
        snapshots.forecast_category,
        cast(count(*) as bigint) as deals,
        sum(snapshots.amount) as amount,
        sum(cast(snapshots.expected_amount as decimal(18, 2))) as forecast_amount,
        sum(case
            when deals.is_won and deals.closed_at >= periods.period_start
                and deals.closed_at < periods.period_end then deals.amount
            else 0 end) as actual_amount,
        sum(case when deals.is_won then deals.amount else 0 end) as eventually_won_amount
    from periods
    inner join snapshots
        on snapshots.as_of_date = periods.as_of_date
        and snapshots.expected_close_date >= periods.period_start
        and snapshots.expected_close_date < periods.period_end
    left join deals on snapshots.opportunity_id = deals.opportunity_id
    group by 1, 2, 3, 4, 5
),

won_in_period as (
    -- every deal won in the period, and which of them were won by the snapshot date
    select
        periods.as_of_date,
        periods.period_type,
        periods.horizon,
        periods.period_start,
        count(case when deals.closed_at < {{ dbt.dateadd('day', 1, 'periods.as_of_date') }}
            then 1 end) as closed_deals,
        sum(case when deals.closed_at < {{ dbt.dateadd('day', 1, 'periods.as_of_date') }}
            then deals.amount else 0 end) as closed_amount,
        sum(deals.amount) as won_amount
    from periods
    inner join deals
        on deals.is_won
        and deals.closed_at >= periods.period_start
        and deals.closed_at < periods.period_end
    group by 1, 2, 3, 4
),

closed as (
    select
        periods.as_of_date,
        periods.period_type,
        periods.horizon,
        periods.period_start,
        'closed' as forecast_category,
        cast(coalesce(won.closed_deals, 0) as bigint) as deals,
        coalesce(won.closed_amount, 0) as amount,
        cast(coalesce(won.closed_amount, 0) as decimal(18, 2)) as forecast_amount,
        coalesce(won.closed_amount, 0) as actual_amount,
        coalesce(won.closed_amount, 0) as eventually_won_amount
    from periods
    left join won_in_period as won
        on periods.as_of_date = won.as_of_date
        and periods.period_type = won.period_type
        and periods.horizon = won.horizon
),

total as (
    select
        periods.as_of_date,
        periods.period_type,
        periods.horizon,
        periods.period_start,
        'total' as forecast_category,
        cast(coalesce(won.closed_deals, 0) + coalesce(opened.deals, 0) as bigint) as deals,
        coalesce(won.closed_amount, 0) + coalesce(opened.amount, 0) as amount,
        cast(coalesce(won.closed_amount, 0) as decimal(18, 2))
            + coalesce(opened.forecast_amount, 0) as forecast_amount,
        coalesce(won.won_amount, 0) as actual_amount,
        cast(null as decimal(18, 2)) as eventually_won_amount
    from periods
    left join won_in_period as won
        on periods.as_of_date = won.as_of_date
        and periods.period_type = won.period_type
        and periods.horizon = won.horizon
    left join (
        select as_of_date, period_type, horizon, sum(deals) as deals,
            sum(amount) as amount, sum(forecast_amount) as forecast_amount
        from open_forecast
        group by 1, 2, 3
    ) as opened
        on periods.as_of_date = opened.as_of_date
        and periods.period_type = opened.period_type
        and periods.horizon = opened.horizon
),

combined as (
    select * from open_forecast
    union all
    select * from closed
    union all
    select * from total
)

select
    as_of_date,
    period_type,
    horizon,
    period_start,
    forecast_category,
    deals,
    amount,
    forecast_amount,
    actual_amount,
    eventually_won_amount,
    forecast_amount - actual_amount as error,
    {{ safe_ratio('forecast_amount - actual_amount', 'actual_amount') }} as bias,
    {{ safe_ratio('abs(forecast_amount - actual_amount)', 'actual_amount') }}
        as absolute_percentage_error
from combined
