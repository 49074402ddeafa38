{#- Every delivered version of every customer record (no as-of filter, no dedupe), for
    models that need a customer as they were on some past date (the feature mart). -#}
{{ config(materialized='view', tags=['ml']) }}

with

source as (
    select * from {{ source('crm', 'customers') }}
),

renamed as (
    select
        trim(customer_id) as customer_id,
        created_at,
        updated_at,
        birth_date,
        lower(nullif(trim(gender), '')) as gender,
        lower(nullif(trim(marital_status), '')) as marital_status,
        lower(nullif(trim(occupation), '')) as occupation,
        lower(nullif(trim(industry), '')) as industry,
        monthly_income,
        nullif(trim(region), '') as region,
        lower(nullif(trim(acquisition_channel), '')) as acquisition_channel,
        _batch_id,
        _loaded_at,
        _row_number
    from source
)

select * from renamed
