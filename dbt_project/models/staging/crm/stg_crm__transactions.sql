{#- A view: fct_transactions materialises it (incrementally), so the largest entity is
    written once per run, and its keys and values are tested there. -#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('crm', 'transactions') }}
),

known_as_of as (
    select *
    from source
    where occurred_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['transaction_id'], 'updated_at') }}
),

renamed as (
    select
        trim(transaction_id) as transaction_id,
        trim(customer_id) as customer_id,
        nullif(trim(product_id), '') as product_id,
        occurred_at,
        coalesce(quantity, 1) as quantity,
        amount,
        -- A transaction without status is completed; a refund or cancellation recorded
        -- after the as-of date had not happened yet on that date.
        case
            when lower(trim(status)) in ('refunded', 'cancelled')
                and updated_at >= {{ as_of_cutoff() }}
                then 'completed'
            else coalesce(lower(nullif(trim(status), '')), 'completed')
        end as status,
        updated_at,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
