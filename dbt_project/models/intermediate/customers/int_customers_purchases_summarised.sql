{#- Per customer with at least one completed purchase: the purchase summary and the
    buy-till-you-die (BTYD) summary CLV models take. Same-day purchases count as one
    purchase day, as BG/NBD assumes. -#}
with

completed as (
    select customer_id, occurred_at, occurred_date, amount
    from {{ ref('int_transactions_enriched') }}
    where is_completed
),

purchase_days as (
    select
        customer_id,
        occurred_date,
        sum(amount) as day_amount
    from completed
    group by customer_id, occurred_date
),

purchase_days_ordered as (
    select
        *,
        row_number() over (partition by customer_id order by occurred_date) as day_number
    from purchase_days
),

btyd as (
    select
        customer_id,
        count(*) - 1 as btyd_frequency,
        min(occurred_date) as first_purchase_date,
        max(occurred_date) as last_purchase_date,
        -- Gamma-Gamma models the spend of repeat purchases: the first day is left out
        sum(case when day_number > 1 then day_amount end) / nullif(count(*) - 1, 0)
            as btyd_monetary_value
    from purchase_days_ordered
    group by customer_id
),

orders as (
    select
        customer_id,
        min(occurred_at) as first_purchase_at,
        max(occurred_at) as last_purchase_at,
        count(*) as orders,
        sum(amount) as lifetime_revenue
    from completed
    group by customer_id
),

summarised as (
    select
        orders.customer_id,
        orders.first_purchase_at,
        orders.last_purchase_at,
        orders.orders,
        orders.lifetime_revenue,
        orders.lifetime_revenue / orders.orders as average_order_value,
        {{ dbt.datediff('btyd.last_purchase_date', as_of_date(), 'day') }} as days_since_last_purchase,
        btyd.btyd_frequency,
        {{ dbt.datediff('btyd.first_purchase_date', 'btyd.last_purchase_date', 'day') }}
            as btyd_recency_days,
        {{ dbt.datediff('btyd.first_purchase_date', as_of_date(), 'day') }} as btyd_t_days,
        btyd.btyd_monetary_value
    from orders
    inner join btyd on orders.customer_id = btyd.customer_id
)

select * from summarised
