{#- One row per opportunity and stage entered: when, until when, for how long, and how
    the stay ended (advanced, lost, suspended, terminated, or still open). -#}
with

stages as (
    select * from {{ ref('int_opportunity_stages_sequenced') }}
),

measured as (
    select
        opportunity_id,
        stage,
        stage_order,
        entered_at,
        exited_at,
        next_stage,
        outcome,
        exited_at is null and outcome = 'open' as is_current_stage,
        case
            when stage in ('won', 'lost') then null
            else {{ days_between('entered_at', 'coalesce(exited_at, ' ~ as_of_cutoff() ~ ')') }}
        end as days_in_stage
    from stages
)

select * from measured
