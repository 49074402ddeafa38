{#- Each stage entry with the entry that followed it and how the stay ended. The stages,
    their order and how each closes a deal come from the opportunity's pipeline
    (stg_crm__sales_pipeline_stages); no stage is named here. A history delivered out of
    order is put in order by time (then by stage order). Going back to an earlier stage is
    `moved_back`, not an advance; the conversion rates leave it out. -#}
with

opportunities as (
    select opportunity_id, pipeline_id, status, closed_at
    from {{ ref('int_opportunities_pipelined') }}
),

stages as (
    select * from {{ ref('stg_crm__sales_pipeline_stages') }}
),

history as (
    -- each entry spelled as the pipelines file spells its stage
    select
        history.opportunity_id,
        opportunities.pipeline_id,
        coalesce(stages.stage, history.stage) as stage,
        stages.stage_order,
        stages.stage_kind,
        history.entered_at
    from {{ ref('stg_crm__opportunity_stage_history') }} as history
    left join opportunities on history.opportunity_id = opportunities.opportunity_id
    left join stages
        on opportunities.pipeline_id = stages.pipeline_id
        and lower(history.stage) = lower(stages.stage)
),

sequenced as (
    select
        history.*,
        lead(history.stage) over (
            partition by history.opportunity_id
            order by history.entered_at, history.stage_order
        ) as next_stage,
        lead(history.stage_kind) over (
            partition by history.opportunity_id
            order by history.entered_at, history.stage_order
        ) as next_stage_kind,
        lead(history.stage_order) over (
            partition by history.opportunity_id
            order by history.entered_at, history.stage_order
        ) as next_stage_order,
        lead(history.entered_at) over (
            partition by history.opportunity_id
            order by history.entered_at, history.stage_order
        ) as next_entered_at
    from history
),

ended as (
    select
        sequenced.opportunity_id,
        sequenced.pipeline_id,
        sequenced.stage,
        sequenced.stage_order,
        sequenced.stage_kind,
        sequenced.entered_at,
        sequenced.next_stage,
        sequenced.next_entered_at,
        opportunities.status as opportunity_status,
        case
            when sequenced.stage_kind <> 'open' then null
            when sequenced.next_entered_at is not null then sequenced.next_entered_at
            when opportunities.status <> 'open' then opportunities.closed_at
        end as exited_at,
        case
            when sequenced.stage_kind <> 'open' then sequenced.stage_kind
            when sequenced.next_stage_kind in ('lost', 'suspended', 'terminated')
                then sequenced.next_stage_kind
            when sequenced.next_stage_order > sequenced.stage_order then 'advanced'
            when sequenced.next_stage is not null then 'moved_back'
            when opportunities.status in ('lost', 'suspended', 'terminated')
                then opportunities.status
            when opportunities.status = 'won' then 'advanced'
            else 'open'
        end as outcome
    from sequenced
    left join opportunities on sequenced.opportunity_id = opportunities.opportunity_id
)

select * from ended
