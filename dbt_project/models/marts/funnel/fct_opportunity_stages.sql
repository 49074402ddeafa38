{#- One row per opportunity and stage entered: when, until when, for how long, and how
    the stay ended (advanced, lost, suspended, terminated, or still open). Entering a
    closing stage (won, lost, ...) is a row of its own, without a duration. -#}
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
            when stage_kind <> 'open' then null
            else {{ days_between('entered_at', 'coalesce(exited_at, ' ~ as_of_cutoff() ~ ')') }}
        end as days_in_stage,
        pipeline_id,
        stage_kind
    from stages
)

select * from measured
