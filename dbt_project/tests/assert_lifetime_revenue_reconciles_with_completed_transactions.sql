-- The customer 360's revenue is exactly the completed transactions of known customers.
with customers as (
    select sum(lifetime_revenue) as revenue, sum(orders) as orders
    from {{ ref('dim_customers') }}
),
transactions as (
    select coalesce(sum(amount), 0) as revenue, count(*) as orders
    from {{ ref('fct_transactions') }}
    where is_completed
      and customer_id in (select customer_id from {{ ref('dim_customers') }})
)
select *
from customers cross join transactions
where customers.revenue <> transactions.revenue or customers.orders <> transactions.orders
