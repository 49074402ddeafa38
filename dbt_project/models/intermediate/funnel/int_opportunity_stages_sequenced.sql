{#- Each stage entry with the entry that followed it and how the stay ended. A history
    delivered out of order is put in order by time (then by funnel order). Going back to
    an earlier stage is `moved_back`, not an advance; the conversion rates leave it out. -#}
with

history as (
    select opportunity_id, stage, entered_at
    from {{ ref('stg_crm__opportunity_stage_history') }}
),

opportunities as (
    select opportunity_id, status, closed_at
    from {{ ref('stg_crm__opportunities') }}
),

sequenced as (
    select
        history.opportunity_id,
        history.stage,
        {{ stage_order('history.stage') }} as stage_order,
        history.entered_at,
        lead(history.stage) over (
            partition by history.opportunity_id
            order by history.entered_at, {{ stage_order('history.stage') }}
        ) as next_stage,
        lead(history.entered_at) over (
            partition by history.opportunity_id
            order by history.entered_at, {{ stage_order('history.stage') }}
        ) as next_entered_at
    from history
),

ended as (
    select
        sequenced.*,
        opportunities.status as opportunity_status,
        case
            when sequenced.stage in ('won', 'lost') then null
            when sequenced.next_entered_at is not null then sequenced.next_entered_at
            when opportunities.status <> 'open' then opportunities.closed_at
        end as exited_at,
        case
            when sequenced.stage in ('won', 'lost') then sequenced.stage
            when sequenced.next_stage = 'lost' then 'lost'
            when {{ stage_order('sequenced.next_stage') }} > sequenced.stage_order then 'advanced'
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
