{#- Rep and team performance per quarter of closing: bookings, win rate, days to close, the
    quarter's quota (sales_quotas, else the rep's sales_reps.quarterly_quota) and its
    attainment; and for the quarter of the as-of date, the open pipeline and how well it
    covers the quota still to book. A team's quota is the sum of its reps'. -#}
with

opportunities as (
    select
        *,
        {{ dbt.date_trunc('quarter', 'closed_at') }} as closed_quarter
    from {{ ref('fct_opportunities') }}
),

reps as (
    select * from {{ ref('stg_crm__sales_reps') }}
),

quotas as (
    select owner_id, quarter_start, quota from {{ ref('stg_crm__sales_quotas') }}
),

current_quarter as (
    select {{ dbt.date_trunc('quarter', as_of_date()) }} as quarter_start
),

closed_by_rep as (
    select
        owner_id,
        cast(closed_quarter as date) as quarter_start,
        sum(case when is_won then amount else 0 end) as bookings,
        sum(case when is_won then 1 else 0 end) as won,
        sum(case when status = 'lost' then 1 else 0 end) as lost,
        sum(case when status in ('suspended', 'terminated') then 1 else 0 end)
            as suspended_or_terminated,
        -- decimals: a sum of doubles depends on the row order (see fct_deal_outcomes)
        cast(avg(case when is_won then cast(days_open as decimal(18, 6)) end)
             as double precision) as average_days_to_close
    from opportunities
    where is_closed and owner_id is not null
    group by 1, 2
),

open_by_rep as (
    select owner_id, sum(amount) as open_pipeline, count(*) as open_opportunities
    from opportunities
    where status = 'open' and owner_id is not null
    group by 1
),

owners as (
    -- every rep, and owners of opportunities who are missing from sales_reps
    select owner_id from reps
    union
    select owner_id from opportunities where owner_id is not null
    union
    select owner_id from quotas
),

quarters as (
    -- every quarter anything closed in or with a quota, up to the current quarter
    select quarter_start from closed_by_rep
    union
    select quotas.quarter_start from quotas cross join current_quarter
    where quotas.quarter_start <= cast(current_quarter.quarter_start as date)
    union
    select cast(quarter_start as date) from current_quarter
),

rep_quarters as (
    -- every owner in every quarter, so team quotas sum over the whole team
    select owners.owner_id, quarters.quarter_start
    from owners cross join quarters
),

by_rep as (
    select
        'rep' as level,
        rep_quarters.owner_id,
        coalesce(reps.team, 'unknown') as team,
        reps.region,
        rep_quarters.quarter_start,
        cast(rep_quarters.quarter_start as date) = cast(current_quarter.quarter_start as date)
            as is_current_quarter,
        coalesce(closed_by_rep.bookings, 0) as bookings,
        coalesce(closed_by_rep.won, 0) as won,
        coalesce(closed_by_rep.lost, 0) as lost,
        coalesce(closed_by_rep.suspended_or_terminated, 0) as suspended_or_terminated,
        closed_by_rep.average_days_to_close,
        coalesce(quotas.quota, reps.quarterly_quota) as quarterly_quota,
        case
            when quotas.quota is not null then 'sales_quotas'
            when reps.quarterly_quota is not null then 'sales_reps'
        end as quota_source,
        -- what counts against a quota: a rep without one books nothing against the team's
        case
            when coalesce(quotas.quota, reps.quarterly_quota) is not null
                then coalesce(closed_by_rep.bookings, 0)
        end as bookings_against_quota,
        case
            when cast(rep_quarters.quarter_start as date) = cast(current_quarter.quarter_start as date)
                then coalesce(open_by_rep.open_pipeline, 0)
        end as open_pipeline
    from rep_quarters
    cross join current_quarter
    left join reps on rep_quarters.owner_id = reps.owner_id
    left join closed_by_rep
        on rep_quarters.owner_id = closed_by_rep.owner_id
        and rep_quarters.quarter_start = closed_by_rep.quarter_start
    left join open_by_rep on rep_quarters.owner_id = open_by_rep.owner_id
    left join quotas
        on rep_quarters.owner_id = quotas.owner_id
        and rep_quarters.quarter_start = quotas.quarter_start
),

by_team as (
    select
        'team' as level,
        cast(null as {{ dbt.type_string() }}) as owner_id,
        team,
        min(region) as region,
        quarter_start,
        is_current_quarter,
        sum(bookings) as bookings,
        sum(won) as won,
        sum(lost) as lost,
        sum(suspended_or_terminated) as suspended_or_terminated,
        sum(average_days_to_close * won) / nullif(sum(won), 0) as average_days_to_close,
        sum(quarterly_quota) as quarterly_quota,
        -- where the reps' quotas came from: one source for all, none, or mixed (two
        -- sources, or some reps without a quota)
        case
            when count(quota_source) = 0 then null
            when count(quota_source) = count(*) and min(quota_source) = max(quota_source)
                then min(quota_source)
            else 'mixed'
        end as quota_source,
        sum(bookings_against_quota) as bookings_against_quota,
        sum(open_pipeline) as open_pipeline
    from by_rep
    group by team, quarter_start, is_current_quarter
),

combined as (
    select * from by_rep
    union all
    select * from by_team
),

rated as (
    select
        *,
        {{ safe_ratio('won', 'won + lost') }} as win_rate,
        {{ safe_ratio('bookings_against_quota', 'quarterly_quota') }} as attainment,
        case
            when quarterly_quota > bookings_against_quota
                then quarterly_quota - bookings_against_quota
            when quarterly_quota is not null then 0
        end as remaining_quota,
        case
            when is_current_quarter
                then {{ safe_ratio('open_pipeline',
                                   'case when quarterly_quota > bookings_against_quota
                                        then quarterly_quota - bookings_against_quota end') }}
        end as pipeline_coverage
    from combined
)

select * from rated
