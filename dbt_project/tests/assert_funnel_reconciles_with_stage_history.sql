-- Overall funnel counts are the stage entries of the stage fact, stage by stage, and every
-- opportunity appears once in fct_opportunities.
with entries as (
    select pipeline_id, stage, count(*) as entries
    from {{ ref('fct_opportunity_stages') }}
    where stage_kind = 'open'
    group by pipeline_id, stage
),
funnel as (
    select pipeline_id, stage, entered
    from {{ ref('fct_funnel_stage_conversion') }}
    where dimension = 'all'
),
mismatched_stages as (
    select coalesce(entries.stage, funnel.stage) as stage
    from entries full outer join funnel
        on entries.pipeline_id = funnel.pipeline_id and entries.stage = funnel.stage
    where coalesce(entries.entries, -1) <> coalesce(funnel.entered, -1)
),
mismatched_count as (
    select 'opportunities' as stage
    from (select count(*) as n from {{ ref('fct_opportunities') }}) as facts
    cross join (select count(*) as n from {{ ref('stg_crm__opportunities') }}) as staged
    where facts.n <> staged.n
)
select * from mismatched_stages
union all
select * from mismatched_count
