{#- Each opportunity in its sales pipeline (the default one when the CRM gave none), with
    the stage the CRM reports it in now, spelled as the pipelines file spells it, and its
    status: the CRM's when it gave one, else the kind of its stage (a deal export's "Won"
    closes it; an open stage keeps it open even past an expected close date), else open
    when it has no close date. A deal closed without a status or a stage has no status:
    its outcome is unknown (a warning test on fct_opportunities counts them). -#}
with

opportunities as (
    select * from {{ ref('stg_crm__opportunities') }}
),

stages as (
    select * from {{ ref('stg_crm__sales_pipeline_stages') }}
),

default_pipeline as (
    select min(pipeline_id) as pipeline_id from stages where is_default_pipeline
),

pipelined as (
    select
        opportunities.*,
        coalesce(opportunities.pipeline_id, default_pipeline.pipeline_id) as in_pipeline_id
    from opportunities
    cross join default_pipeline
),

staged as (
    select
        pipelined.opportunity_id,
        pipelined.customer_id,
        pipelined.campaign_id,
        pipelined.owner_id,
        pipelined.product_id,
        pipelined.in_pipeline_id as pipeline_id,
        pipelined.created_at,
        pipelined.amount,
        coalesce(
            pipelined.status,
            case when stages.stage_kind is not null then stages.stage_kind end,
            case when pipelined.closed_at is null then 'open' end
        ) as status,
        pipelined.closed_at,
        pipelined.lost_to_competitor,
        stages.stage as reported_stage,
        stages.stage_order as reported_stage_order,
        stages.stage_kind as reported_stage_kind,
        pipelined.updated_at
    from pipelined
    left join stages
        on pipelined.in_pipeline_id = stages.pipeline_id
        and lower(pipelined.stage) = lower(stages.stage)
)

select * from staged
