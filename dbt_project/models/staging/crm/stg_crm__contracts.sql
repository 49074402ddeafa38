with

source as (
    select * from {{ source('crm', 'contracts') }}
),

known_as_of as (
    select *
    from source
    where signed_at < {{ as_of_cutoff() }}
),

latest as (
    {{ latest_version_as_of('known_as_of', ['contract_id'], 'updated_at') }}
),

renamed as (
    select
        trim(contract_id) as contract_id,
        nullif(trim(opportunity_id), '') as opportunity_id,
        trim(customer_id) as customer_id,
        signed_at,
        amount,
        updated_at,
        _batch_id,
        _loaded_at
    from latest
)

select * from renamed
