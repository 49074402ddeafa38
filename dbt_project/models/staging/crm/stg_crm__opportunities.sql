with

source as (
    select * from {{ source('crm', 'opportunities') }}
),

known_as_of as (
    select *
    from source
    where created_at is null or created_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['opportunity_id'], 'updated_at') }}
),

renamed as (
    select
        trim(opportunity_id) as opportunity_id,
        nullif(trim(customer_id), '') as customer_id,
        nullif(trim(campaign_id), '') as campaign_id,
        nullif(trim(owner_id), '') as owner_id,
        nullif(trim(product_id), '') as product_id,
        nullif(trim(pipeline_id), '') as pipeline_id,
        nullif(trim(stage), '') as stage,
        created_at,
        amount,
        lower(nullif(trim(status), '')) as status,
        closed_at,
        nullif(trim(lost_to_competitor), '') as lost_to_competitor,
        updated_at,
        _batch_id,
        _loaded_at
    from latest
),

as_of_state as (
    -- an opportunity closed after the as-of date was still open on that date. Without a
    -- status, one with a stage is left for int_opportunities_pipelined to read from it.
    select
        opportunity_id,
        customer_id,
        campaign_id,
        owner_id,
        product_id,
        pipeline_id,
        stage,
        created_at,
        amount,
        case
            when closed_at >= {{ as_of_cutoff() }} then 'open'
            else coalesce(status, case when closed_at is null and stage is null then 'open' end)
        end as status,
        case when closed_at < {{ as_of_cutoff() }} then closed_at end as closed_at,
        case when closed_at < {{ as_of_cutoff() }} then lost_to_competitor end
            as lost_to_competitor,
        updated_at,
        _batch_id,
        _loaded_at
    from renamed
)

select * from as_of_state
