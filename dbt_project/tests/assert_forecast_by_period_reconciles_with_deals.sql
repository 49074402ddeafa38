-- Under every period type and dimension (each must be there), the forecast's open
-- categories hold every deal of fct_pipeline_forecast once (deals, amount and expected
-- amount, the latter to the cent per deal), and `closed` every deal won since the start
-- of the current period.
with open_totals as (
    select count(*) as deals, coalesce(sum(amount), 0) as amount,
           coalesce(sum(cast(expected_amount as decimal(18, 2))), 0) as expected_amount
    from {{ ref('fct_pipeline_forecast') }}
),
won_totals as (
    {%- for period in ['month', 'quarter'] %}
    select '{{ period }}' as period_type, count(*) as deals, coalesce(sum(amount), 0) as amount
    from {{ ref('fct_opportunities') }}
    where is_won
        and closed_at >= {{ dbt.date_trunc(period, as_of_date()) }}
        and closed_at < {{ as_of_cutoff() }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),
rolled as (
    select period_type, dimension,
        sum(case when forecast_category <> 'closed' then deals else 0 end) as open_deals,
        coalesce(sum(case when forecast_category <> 'closed' then amount end), 0) as open_amount,
        coalesce(sum(case when forecast_category <> 'closed' then expected_amount end), 0)
            as open_expected_amount,
        sum(case when forecast_category = 'closed' then deals else 0 end) as won_deals,
        coalesce(sum(case when forecast_category = 'closed' then amount end), 0) as won_amount
    from {{ ref('fct_forecast_by_period') }}
    group by period_type, dimension
),
expected_groups as (
    -- every period type with every dimension, so a missing group fails too
    select won_totals.period_type, dimensions.dimension
    from won_totals
    cross join (
        {%- for dimension in ['all', 'pipeline', 'owner', 'team', 'region'] %}
        select '{{ dimension }}' as dimension
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    ) as dimensions
    -- an empty pipeline has no rows to hold
    where (select deals from open_totals) > 0 or won_totals.deals > 0
)
select expected_groups.period_type, expected_groups.dimension, rolled.open_deals,
    rolled.open_amount, rolled.open_expected_amount, rolled.won_deals, rolled.won_amount
from expected_groups
cross join open_totals
inner join won_totals on expected_groups.period_type = won_totals.period_type
left join rolled
    on expected_groups.period_type = rolled.period_type
    and expected_groups.dimension = rolled.dimension
where rolled.period_type is null
    or rolled.open_deals <> open_totals.deals
    or rolled.open_amount <> open_totals.amount
    or rolled.open_expected_amount <> open_totals.expected_amount
    or rolled.won_deals <> won_totals.deals
    or rolled.won_amount <> won_totals.amount
