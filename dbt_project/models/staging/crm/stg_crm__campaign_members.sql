with

source as (
    select * from {{ source('crm', 'campaign_members') }}
),

known_as_of as (
    select *
    from source
    where added_at is null or added_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['campaign_id', 'customer_id']) }}
),

renamed as (
    select
        trim(campaign_id) as campaign_id,
        trim(customer_id) as customer_id,
        added_at,
        -- `holdout` (what our audience releases call it) is the CRM's control group
        case lower(nullif(trim(member_group), ''))
            when 'holdout' then 'control'
            else coalesce(lower(nullif(trim(member_group), '')), 'target')
        end as member_group,
        nullif(trim(source), '') as member_source,
        -- a response after the as-of date had not happened yet
        case when responded_at < {{ as_of_cutoff() }} then responded_at end as responded_at,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
