{#- Per sales pipeline and stage (its open stages, then won): how many deals reached it.
    A deal reached every stage up to the furthest it is known to have been in, because the
    pipelines file orders the stages: with a stage history, the furthest open stage it
    entered; without one (a deal export), the open stage the CRM reports it in. A won deal
    reached every stage. A deal closed another way without a history is known only to have
    entered the pipeline (its first stage): the export does not say where it was lost. -#}
with

pipeline_stages as (
    select * from {{ ref('stg_crm__sales_pipeline_stages') }}
),

open_stage_counts as (
    select pipeline_id, max(stage_order) as open_stages
    from pipeline_stages
    where stage_kind = 'open'
    group by 1
),

furthest_in_history as (
    select opportunity_id, max(stage_order) as stage_order
    from {{ ref('fct_opportunity_stages') }}
    where stage_kind = 'open'
    group by 1
),

reported as (
    select opportunity_id, reported_stage_order, reported_stage_kind
    from {{ ref('int_opportunities_pipelined') }}
),

deals as (
    select
        opportunities.opportunity_id,
        opportunities.pipeline_id,
        opportunities.is_won,
        furthest_in_history.stage_order is not null as has_history,
        case
            when opportunities.is_won then open_stage_counts.open_stages
            when furthest_in_history.stage_order is not null then furthest_in_history.stage_order
            when reported.reported_stage_kind = 'open' then reported.reported_stage_order
            else 1
        end as furthest_stage_order
    from {{ ref('fct_opportunities') }} as opportunities
    inner join open_stage_counts on opportunities.pipeline_id = open_stage_counts.pipeline_id
    left join furthest_in_history
        on opportunities.opportunity_id = furthest_in_history.opportunity_id
    left join reported on opportunities.opportunity_id = reported.opportunity_id
),

steps as (
    {#- the open stages, then the won stage the last of them leads to -#}
    select pipeline_id, stage, stage_order, stage_kind
    from pipeline_stages
    where stage_kind = 'open'
    union all
    select
        pipeline_stages.pipeline_id,
        pipeline_stages.next_stage as stage,
        pipeline_stages.stage_order + 1 as stage_order,
        'won' as stage_kind
    from pipeline_stages
    inner join open_stage_counts
        on pipeline_stages.pipeline_id = open_stage_counts.pipeline_id
        and pipeline_stages.stage_order = open_stage_counts.open_stages
    where pipeline_stages.stage_kind = 'open'
),

reaches as (
    {#- each stage with each deal of its pipeline: 1 when the deal reached it -#}
    select
        steps.pipeline_id,
        steps.stage,
        steps.stage_order,
        steps.stage_kind,
        deals.opportunity_id,
        deals.has_history,
        case
            when steps.stage_kind = 'won' and deals.is_won then 1
            when steps.stage_kind = 'open' and deals.furthest_stage_order >= steps.stage_order
                then 1
            else 0
        end as reached
    from steps
    left join deals on steps.pipeline_id = deals.pipeline_id
),

reached as (
    select
        pipeline_id,
        stage,
        stage_order,
        stage_kind,
        sum(reached) as deals_reached,
        sum(case when has_history then reached else 0 end)
            as deals_reached_by_history,
        count(opportunity_id) as pipeline_deals
    from reaches
    group by 1, 2, 3, 4
),

rated as (
    select
        pipeline_id,
        stage,
        stage_order,
        stage_kind,
        deals_reached,
        deals_reached_by_history,
        {{ safe_ratio('deals_reached', 'pipeline_deals') }} as reach_rate,
        {{ safe_ratio('deals_reached', 'lag(deals_reached) over (partition by pipeline_id order by stage_order)') }}
            as reached_from_previous_stage
    from reached
)

select * from rated
