with

source as (
    select * from {{ source('crm', 'products') }}
),

latest as (
    {{ latest_version_as_of('source', ['product_id']) }}
),

renamed as (
    select
        trim(product_id) as product_id,
        nullif(trim(name), '') as product_name,
        lower(nullif(trim(category), '')) as category,
        list_price,
        unit_cost,
        coalesce(is_offer, false) as is_offer,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
