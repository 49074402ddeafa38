{#- Closed opportunities by outcome and competitor: won, lost (to whom), and suspended or
    terminated kept apart. -#}
with

closed as (
    select * from {{ ref('fct_opportunities') }}
    where is_closed
),

grouped as (
    select
        status as outcome,
        coalesce(lost_to_competitor, case when status = 'lost' then 'not recorded' end)
            as competitor,
        count(*) as opportunities,
        sum(amount) as amount
    from closed
    group by 1, 2
),

shared as (
    select
        *,
        {{ safe_ratio('opportunities', 'sum(opportunities) over ()') }} as share_of_closed
    from grouped
)

select * from shared
