{#- The customer 360: one row per customer known on the as-of date. Personal data is only
    hashed or masked here. See _core__models.yml for every column and the thresholds. -#}
with

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

purchases as (
    -- buyers known on the as-of date (a purchase of a customer recorded later is an orphan
    -- that the relationships test reports; it must not shift the ranks of the others)
    select * from {{ ref('int_customers_purchases_summarised') }}
    where customer_id in (select customer_id from customers)
),

contacts as (
    select * from {{ ref('int_customers_interactions_summarised') }}
),

lifetime_values as (
    select * from {{ ref('stg_ml__customer_lifetime_values') }}
),

rfm_scored as (
    -- quintiles among buyers by rank, so equal values share a score: with many one-order
    -- customers the lowest frequency score covers them all and some scores go unused
    select
        customer_id,
        {{ quintile('days_since_last_purchase desc') }} as recency_score,
        {{ quintile('orders') }} as frequency_score,
        {{ quintile('lifetime_revenue') }} as monetary_score
    from purchases
),

revenue_ranked as (
    select
        customer_id,
        lifetime_revenue,
        row_number() over (order by lifetime_revenue desc, customer_id) as revenue_rank,
        sum(lifetime_revenue) over (
            order by lifetime_revenue desc, customer_id
            rows between unbounded preceding and current row
        ) as cumulative_revenue,
        sum(lifetime_revenue) over () as total_revenue
    from purchases
    where lifetime_revenue > 0
),

pareto as (
    -- A customer is key when the customers ranked above carry less than 80% of revenue:
    -- the smallest set reaching 80%, the one who crosses the line included.
    select
        customer_id,
        revenue_rank,
        cumulative_revenue / total_revenue as cumulative_revenue_share,
        (cumulative_revenue - lifetime_revenue) / total_revenue
            < {{ var('key_customer_revenue_share') }} as is_key_customer,
        case
            when (cumulative_revenue - lifetime_revenue) / total_revenue
                < {{ var('key_customer_revenue_share') }} then 'A'
            when (cumulative_revenue - lifetime_revenue) / total_revenue
                < {{ var('tier_b_revenue_share') }} then 'B'
            else 'C'
        end as customer_tier
    from revenue_ranked
),

joined as (
    select
        customers.customer_id,
        customers.email_hash,
        {{ mask_email('customers.email') }} as email_masked,
        {{ mask_phone('customers.phone') }} as phone_masked,
        customers.created_at,
        {{ dbt.datediff('cast(customers.created_at as date)', as_of_date(), 'day') }}
            as tenure_days,
        {% if var('bi_exact_quasi_identifiers', false) -%}
        customers.birth_date,
        {% endif -%}
        floor({{ dbt.datediff('customers.birth_date', as_of_date(), 'day') }} / 365.25) as age,
        customers.gender,
        customers.marital_status,
        customers.occupation,
        customers.industry,
        customers.monthly_income,
        customers.region,
        {% if var('bi_exact_quasi_identifiers', false) -%}
        customers.city,
        {% endif -%}
        customers.acquisition_channel,

        purchases.first_purchase_at,
        purchases.last_purchase_at,
        coalesce(purchases.orders, 0) as orders,
        coalesce(purchases.lifetime_revenue, 0) as lifetime_revenue,
        purchases.average_order_value,
        purchases.days_since_last_purchase,

        purchases.btyd_frequency,
        purchases.btyd_recency_days,
        purchases.btyd_t_days,
        purchases.btyd_monetary_value,

        rfm_scored.recency_score,
        rfm_scored.frequency_score,
        rfm_scored.monetary_score,

        pareto.revenue_rank,
        pareto.cumulative_revenue_share,
        coalesce(pareto.is_key_customer, false) as is_key_customer,
        coalesce(pareto.customer_tier, 'C') as customer_tier,

        lifetime_values.expected_purchases_90d,
        lifetime_values.probability_alive,
        lifetime_values.expected_order_value,
        lifetime_values.clv_12m,
        lifetime_values.clv_model_version,

        contacts.last_interaction_at,
        contacts.last_campaign_touch_at,
        contacts.opted_out_at is not null as is_opted_out,
        coalesce(contacts.complaints_90d, 0) as complaints_90d,
        coalesce(contacts.responses_90d, 0) as responses_90d
    from customers
    left join purchases on customers.customer_id = purchases.customer_id
    left join rfm_scored on customers.customer_id = rfm_scored.customer_id
    left join pareto on customers.customer_id = pareto.customer_id
    left join lifetime_values on customers.customer_id = lifetime_values.customer_id
    left join contacts on customers.customer_id = contacts.customer_id
),

described as (
    select
        *,
        case
            when age < 20 then 'under 20'
            when age < 30 then '20-29'
            when age < 40 then '30-39'
            when age < 50 then '40-49'
            when age < 60 then '50-59'
            when age >= 60 then '60+'
        end as age_band,
        {#- whole numbers first: a double prints as '4.0' on DuckDB, '4' on PostgreSQL #}
        {%- set int_, text_ = dbt.type_int(), dbt.type_string() %}
        {{ dbt.concat(["cast(cast(recency_score as " ~ int_ ~ ") as " ~ text_ ~ ")",
                       "cast(cast(frequency_score as " ~ int_ ~ ") as " ~ text_ ~ ")",
                       "cast(cast(monetary_score as " ~ int_ ~ ") as " ~ text_ ~ ")"]) }} as rfm_code,
        {{ rfm_segment('recency_score', 'frequency_score') }} as rfm_segment,
        case
            when first_purchase_at is null then 'prospect'
            when {{ dbt.datediff('cast(first_purchase_at as date)', as_of_date(), 'day') }}
                < {{ var('lifecycle_new_days') }} then 'new'
            when days_since_last_purchase < {{ var('lifecycle_active_days') }} then 'active'
            when days_since_last_purchase < {{ var('lifecycle_at_risk_days') }} then 'at_risk'
            else 'lapsed'
        end as lifecycle_stage
    from joined
)

select * from described
