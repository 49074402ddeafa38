with

source as (
    select * from {{ source('crm', 'opportunity_stage_history') }}
),

known_as_of as (
    select *
    from source
    where entered_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['opportunity_id', 'stage', 'entered_at']) }}
),

renamed as (
    select
        trim(opportunity_id) as opportunity_id,
        trim(stage) as stage,
        entered_at,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
