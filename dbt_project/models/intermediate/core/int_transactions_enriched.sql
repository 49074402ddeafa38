{#- One row per transaction known on the as-of date, with its product and margin: the
    table behind the fct_transactions mart (a view of it), here so that the customer
    summaries can read the enriched rows without reading a mart.
    Incremental (see macros/incremental.sql): a daily run rewrites only the rows that are
    new, late or changed, and those of products delivered again; a backfill to an earlier
    date rebuilds. -#}
{{ config(
    materialized='incremental',
    unique_key='transaction_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook=[
        "{{ rebuild_if_needed() }}",
        "{{ forget_deleted('transaction_id', 'transactions', 'stg_crm__transactions') }}",
    ],
) }}

{%- set rebuild = not is_incremental() or incremental_needs_rebuild(this) %}

with

products as (
    select * from {{ ref('stg_crm__products') }}
),

transactions as (
    select * from {{ ref('stg_crm__transactions') }}
    {%- if not rebuild %}
    where {{ incremental_changes_filter(['occurred_at', 'updated_at']) }}
       -- a product whose category, offer flag or cost changed: its transactions again
       or product_id in (
           select product_id from products
           where _loaded_at > (select max(_loaded_at) from {{ this }})
       )
    {%- endif %}
),

enriched as (
    select
        transactions.transaction_id,
        transactions.customer_id,
        transactions.product_id,
        products.category as product_category,
        coalesce(products.is_offer, false) as is_offer_product,
        transactions.occurred_at,
        cast(transactions.occurred_at as date) as occurred_date,
        transactions.quantity,
        transactions.amount,
        transactions.status,
        transactions.status = 'completed' as is_completed,
        case
            when products.unit_cost is not null
                then transactions.amount - products.unit_cost * transactions.quantity
        end as gross_margin,
        transactions.updated_at,
        transactions._loaded_at,
        {{ as_of_date() }} as _as_of_date
    from transactions
    left join products on transactions.product_id = products.product_id
)

select * from enriched
