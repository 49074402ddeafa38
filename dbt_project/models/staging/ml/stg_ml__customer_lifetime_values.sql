with

source as (
    select * from {{ source('ml', 'customer_lifetime_values') }}
),

renamed as (
    select
        customer_id,
        expected_purchases_90d,
        probability_alive,
        expected_order_value,
        clv_12m,
        model_version as clv_model_version
    from source
    where as_of_date = {{ as_of_date() }}
)

select * from renamed
