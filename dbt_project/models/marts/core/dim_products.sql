{#- One row per product known on the as-of date: its category, prices and whether it is an
    offer (a product campaigns promote and the target-customer models learn). -#}
with

products as (
    select * from {{ ref('stg_crm__products') }}
),

described as (
    select
        product_id,
        product_name,
        category,
        list_price,
        unit_cost,
        list_price - unit_cost as unit_margin,
        is_offer
    from products
)

select * from described
