{#- Closed opportunities per sales pipeline by outcome and competitor: won, lost (to
    whom), and suspended or terminated kept apart; shares within the pipeline. -#}
with

closed as (
    select * from {{ ref('fct_opportunities') }}
    where is_closed
),

grouped as (
    select
        pipeline_id,
        status as outcome,
        coalesce(lost_to_competitor, case when status = 'lost' then 'not recorded' end)
            as competitor,
        count(*) as opportunities,
        sum(amount) as amount
    from closed
    group by 1, 2, 3
),

shared as (
    select
        *,
        {{ safe_ratio('opportunities', 'sum(opportunities) over (partition by pipeline_id)') }}
            as share_of_closed
    from grouped
)

select * from shared
