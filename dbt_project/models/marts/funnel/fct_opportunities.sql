{#- One row per opportunity known on the as-of date, in the state it had then. Its
    current stage is the last open stage its history entered; without a history (a deal
    export with one row per deal) the open stage the CRM reports it in. -#}
with

opportunities as (
    select * from {{ ref('int_opportunities_pipelined') }}
),

reps as (
    select * from {{ ref('stg_crm__sales_reps') }}
),

current_stages as (
    select opportunity_id, stage as current_stage, days_in_stage as days_in_current_stage
    from (
        select
            opportunity_id,
            stage,
            days_in_stage,
            row_number() over (
                partition by opportunity_id order by entered_at desc, stage_order desc
            ) as recency
        from {{ ref('fct_opportunity_stages') }}
        where stage_kind = 'open'
    ) as ranked
    where recency = 1
),

enriched as (
    select
        opportunities.opportunity_id,
        opportunities.customer_id,
        opportunities.owner_id,
        reps.team,
        reps.region as sales_region,
        opportunities.campaign_id as source_campaign_id,
        opportunities.created_at,
        opportunities.closed_at,
        opportunities.status,
        coalesce(
            current_stages.current_stage,
            case when opportunities.reported_stage_kind = 'open' then opportunities.reported_stage end
        ) as current_stage,
        current_stages.days_in_current_stage,
        opportunities.amount,
        opportunities.status = 'won' as is_won,
        opportunities.status = 'lost' as is_lost,
        opportunities.status <> 'open' as is_closed,
        opportunities.lost_to_competitor,
        {{ days_between('opportunities.created_at',
                        'coalesce(opportunities.closed_at, ' ~ as_of_cutoff() ~ ')') }} as days_open,
        opportunities.pipeline_id,
        opportunities.product_id,
        reps.manager
    from opportunities
    left join reps on opportunities.owner_id = reps.owner_id
    left join current_stages on opportunities.opportunity_id = current_stages.opportunity_id
)

select * from enriched
