-- Every roll-up dimension sums to the campaign totals (revenue is credited in shares, a
-- floating point sum: equal to the cent).
with totals as (
    select count(*) as campaigns, coalesce(sum(revenue), 0) as revenue,
           coalesce(sum(actual_cost), 0) as actual_cost
    from {{ ref('fct_campaign_performance') }}
),
rollups as (
    select dimension, sum(campaigns) as campaigns, coalesce(sum(revenue), 0) as revenue,
           coalesce(sum(actual_cost), 0) as actual_cost
    from {{ ref('fct_campaign_roi_rollup') }}
    group by dimension
)
select rollups.*
from rollups cross join totals
where rollups.campaigns <> totals.campaigns
   or abs(rollups.revenue - totals.revenue) > 0.01
   or rollups.actual_cost <> totals.actual_cost
