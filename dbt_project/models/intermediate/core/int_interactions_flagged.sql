{#- One row per interaction known on the as-of date, flagged by what it means for marketing:
    the table behind the fct_interactions mart (a view of it). Incremental like
    int_transactions_enriched. -#}
{{ config(
    materialized='incremental',
    unique_key='interaction_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    pre_hook=[
        "{{ rebuild_if_needed() }}",
        "{{ forget_deleted('interaction_id', 'interactions', 'stg_crm__interactions') }}",
    ],
) }}

{%- set rebuild = not is_incremental() or incremental_needs_rebuild(this) %}

with

interactions as (
    select * from {{ ref('stg_crm__interactions') }}
    {%- if not rebuild %}
    where {{ incremental_changes_filter(['occurred_at', 'updated_at']) }}
    {%- endif %}
),

flagged as (
    select
        interaction_id,
        customer_id,
        occurred_at,
        cast(occurred_at as date) as occurred_date,
        channel,
        interaction_type,
        campaign_id,
        -- a contact made by a campaign (what attribution credits); an unsubscribe or a
        -- complaint about a campaign is not one
        campaign_id is not null
            and interaction_type not in ('unsubscribe', 'complaint', 'service_request')
            as is_campaign_touch,
        interaction_type in ('click', 'inquiry')
            or (interaction_type = 'visit' and campaign_id is not null) as is_response,
        interaction_type = 'complaint' as is_complaint,
        interaction_type = 'unsubscribe' as is_opt_out,
        _loaded_at,
        {{ as_of_date() }} as _as_of_date
    from interactions
)

select * from flagged
