with

source as (
    select * from {{ source('crm', 'sales_reps') }}
),

latest as (
    {{ latest_version_as_of('source', ['owner_id']) }}
),

renamed as (
    select
        trim(owner_id) as owner_id,
        nullif(trim(name), '') as owner_name,
        nullif(trim(manager), '') as manager,
        nullif(trim(team), '') as team,
        nullif(trim(region), '') as region,
        quarterly_quota,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
