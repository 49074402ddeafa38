{#- Deal outcomes per sales pipeline, overall and by owner, manager, office (the owner's
    region), product, sector (the account's industry) and quarter of closing: deals, won,
    lost, win rate, won amount and cycle time from creation (engage) to close. Everything
    here needs one row per deal only, so a deal export without stage history fills it. -#}
with

deals as (
    select
        opportunities.*,
        customers.industry as sector,
        {{ dbt.date_trunc('quarter', 'opportunities.closed_at') }} as closed_quarter
    from {{ ref('fct_opportunities') }} as opportunities
    left join {{ ref('stg_crm__customers') }} as customers
        on opportunities.customer_id = customers.customer_id
),

by_dimension as (
    {%- for dimension, column in [('all', "'all'"), ('owner', 'owner_id'),
                                  ('manager', 'manager'), ('office', 'sales_region'),
                                  ('product', 'product_id'), ('sector', 'sector'),
                                  ('close_quarter', 'closed_quarter')] %}
    select
        pipeline_id,
        '{{ dimension }}' as dimension,
        coalesce(
            cast({{ column }} as {{ dbt.type_string() }}),
            {% if dimension == 'close_quarter' %}'not closed'{% else %}'unknown'{% endif %}
        ) as dimension_value,
        count(*) as deals,
        sum(case when status = 'open' then 1 else 0 end) as open_deals,
        sum(case when is_won then 1 else 0 end) as won_deals,
        sum(case when is_lost then 1 else 0 end) as lost_deals,
        sum(case when status in ('suspended', 'terminated') then 1 else 0 end)
            as suspended_or_terminated_deals,
        sum(case when is_won then amount else 0 end) as won_amount,
        {{ percentile('case when is_won then days_open end', 0.5) }} as median_days_to_win,
        -- averaged as decimals: a sum of doubles depends on the order of the rows, and
        -- a rerun must give the same mart to the last digit
        cast(avg(case when is_closed and status <> 'suspended'
                      then cast(days_open as decimal(18, 6)) end) as double precision)
            as avg_days_to_close
    from deals
    group by 1, 2, 3
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

rated as (
    select
        pipeline_id,
        dimension,
        dimension_value,
        deals,
        open_deals,
        won_deals,
        lost_deals,
        suspended_or_terminated_deals,
        {{ safe_ratio('won_deals', 'won_deals + lost_deals') }} as win_rate,
        won_amount,
        {{ safe_ratio('won_amount', 'won_deals') }} as avg_won_amount,
        median_days_to_win,
        avg_days_to_close
    from by_dimension
)

select * from rated
