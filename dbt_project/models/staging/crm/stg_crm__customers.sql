with

source as (
    select * from {{ source('crm', 'customers') }}
),

known_as_of as (
    select *
    from source
    where created_at is null or created_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['customer_id'], 'updated_at') }}
),

renamed as (
    select
        trim(customer_id) as customer_id,
        created_at,
        updated_at,
        nullif(trim(full_name), '') as full_name,
        lower(nullif(trim(email), '')) as email,
        email_hash,
        nullif(trim(phone), '') as phone,
        birth_date,
        lower(nullif(trim(gender), '')) as gender,
        lower(nullif(trim(marital_status), '')) as marital_status,
        lower(nullif(trim(occupation), '')) as occupation,
        lower(nullif(trim(industry), '')) as industry,
        monthly_income,
        nullif(trim(region), '') as region,
        nullif(trim(city), '') as city,
        lower(nullif(trim(acquisition_channel), '')) as acquisition_channel,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
