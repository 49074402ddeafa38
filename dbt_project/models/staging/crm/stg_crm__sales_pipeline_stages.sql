{#- The pipelines file (crm/sales_pipelines.py): every stage of every sales pipeline. -#}
with

source as (
    select * from {{ source('crm', 'sales_pipeline_stages') }}
),

renamed as (
    select
        pipeline_id,
        pipeline_name,
        is_default_pipeline,
        stage,
        stage_order,
        stage_kind,
        crm_probability,
        next_stage
    from source
)

select * from renamed
