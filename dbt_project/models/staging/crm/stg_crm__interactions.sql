{#- A view: fct_interactions materialises it (incrementally), so the largest entity is
    written once per run, and its keys and values are tested there. -#}
{{ config(materialized='view') }}

with

source as (
    select * from {{ source('crm', 'interactions') }}
),

known_as_of as (
    select *
    from source
    where occurred_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['interaction_id'], 'updated_at') }}
),

renamed as (
    select
        trim(interaction_id) as interaction_id,
        trim(customer_id) as customer_id,
        occurred_at,
        lower(nullif(trim(channel), '')) as channel,
        lower(nullif(trim(interaction_type), '')) as interaction_type,
        nullif(trim(campaign_id), '') as campaign_id,
        updated_at,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
