{#- A campaign is known on the as-of date once it was approved, started, or recorded
    (updated_at) by then; one with none of those dates is always known. When the only
    version we hold was recorded after that date, the fields describing later events are
    rolled back: no actual end or cost yet, and the status it had then. -#}
with

source as (
    select * from {{ source('crm', 'campaigns') }}
),

known_as_of as (
    select *
    from source
    where approved_at < {{ as_of_cutoff() }}
       or updated_at < {{ as_of_cutoff() }}
       or actual_start <= {{ as_of_date() }}
       or (approved_at is null and updated_at is null and actual_start is null)
),

latest as (
    {{ latest_version_as_of('known_as_of', ['campaign_id'], 'updated_at') }}
),

renamed as (
    select
        trim(campaign_id) as campaign_id,
        nullif(trim(name), '') as campaign_name,
        lower(nullif(trim(channel), '')) as channel,
        nullif(trim(region), '') as region,
        nullif(trim(offer_product_id), '') as offer_product_id,
        lower(nullif(trim(objective), '')) as objective,
        planned_budget,
        actual_cost,
        planned_start,
        planned_end,
        actual_start,
        actual_end,
        lower(nullif(trim(status), '')) as status,
        approved_at,
        updated_at,
        coalesce(updated_at >= {{ as_of_cutoff() }}, false) as is_recorded_after_as_of,
        _batch_id,
        _loaded_at
    from latest
),

as_of_state as (
    select
        campaign_id,
        campaign_name,
        channel,
        region,
        offer_product_id,
        objective,
        planned_budget,
        case
            when not is_recorded_after_as_of then actual_cost
            when actual_end <= {{ as_of_date() }} then actual_cost
        end as actual_cost,
        planned_start,
        planned_end,
        case when actual_start <= {{ as_of_date() }} then actual_start end as actual_start,
        case when actual_end <= {{ as_of_date() }} then actual_end end as actual_end,
        case
            when not is_recorded_after_as_of then status
            when status = 'cancelled' or actual_start is null or actual_start > {{ as_of_date() }}
                then case when approved_at < {{ as_of_cutoff() }} then 'approved' else 'draft' end
            when actual_end is null or actual_end > {{ as_of_date() }} then 'running'
            else status
        end as status,
        case when approved_at < {{ as_of_cutoff() }} then approved_at end as approved_at,
        updated_at,
        _batch_id,
        _loaded_at
    from renamed
)

select * from as_of_state
