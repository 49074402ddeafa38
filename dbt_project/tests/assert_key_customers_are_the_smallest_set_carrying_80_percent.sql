-- Key customers carry at least 80% of revenue, and without the smallest of them less.
with totals as (
    select
        sum(lifetime_revenue) as total,
        sum(case when is_key_customer then lifetime_revenue else 0 end) as key_revenue,
        min(case when is_key_customer then lifetime_revenue end) as smallest_key
    from {{ ref('dim_customers') }}
)
select *
from totals
where total > 0
  and (key_revenue < {{ var('key_customer_revenue_share') }} * total
       or key_revenue - smallest_key >= {{ var('key_customer_revenue_share') }} * total)
