with

source as (
    select * from {{ source('crm', 'sales_quotas') }}
),

quarters as (
    -- any day of a quarter names it: the key is the quarter's first day
    select
        trim(owner_id) as owner_id,
        cast({{ dbt.date_trunc('quarter', 'quarter_start') }} as date) as quarter_start,
        quota,
        updated_at,
        deleted_at,
        _batch_id,
        _loaded_at,
        _row_number
    from source
),

latest as (
    {{ latest_version_as_of('quarters', ['owner_id', 'quarter_start'], 'updated_at') }}
)

select owner_id, quarter_start, quota, _batch_id, _loaded_at
from latest
