{#- What each campaign changed: response and adoption of its offer in the target group
    against the control (holdout) group, the difference with a 95% confidence interval,
    the incremental adopters and revenue (with its 95% interval) and the incremental ROI,
    and whether that paid the campaign's cost. fct_campaign_verdicts turns these into one
    verdict beside the gross ROI.

    A member counts as adopting when their first purchase of the campaign's offer falls in
    the `lift_window_days` days from the start of the start day; members who had the offer before the
    start are not at risk and are left out of both groups. Only the difference between the
    groups is credited to the campaign: control members were never contacted. -#}
with

campaigns as (
    select
        c.campaign_id, c.campaign_name, c.channel, c.region, c.status, c.offer_product_id,
        c.actual_start, c.actual_end, c.actual_cost, p.list_price as offer_list_price
    from {{ ref('stg_crm__campaigns') }} as c
    left join {{ ref('stg_crm__products') }} as p on c.offer_product_id = p.product_id
    where c.actual_start is not null and c.offer_product_id is not null
),

adoptions as (
    select customer_id, product_id, adopted_at, amount
    from {{ ref('int_offer_adoptions_attributed') }}
),

members as (
    select
        m.campaign_id,
        m.member_group,
        case when m.responded_at is not null then 1 else 0 end as responded,
        case
            when a.adopted_at < {{ dbt.dateadd('day', var('lift_window_days'), 'c.actual_start') }}
                then 1 else 0
        end as adopted,
        case
            when a.adopted_at < {{ dbt.dateadd('day', var('lift_window_days'), 'c.actual_start') }}
                then a.amount else 0
        end as adoption_revenue
    from {{ ref('stg_crm__campaign_members') }} as m
    inner join campaigns as c on m.campaign_id = c.campaign_id
    left join adoptions as a
        on m.customer_id = a.customer_id and a.product_id = c.offer_product_id
    -- at risk: no adoption of the offer before the start day
    where a.adopted_at is null or a.adopted_at >= c.actual_start
),

by_group as (
    select
        campaign_id,
        sum(case when member_group = 'target' then 1 else 0 end) as members_target,
        sum(case when member_group = 'control' then 1 else 0 end) as members_control,
        sum(case when member_group = 'target' then responded else 0 end) as responders_target,
        sum(case when member_group = 'control' then responded else 0 end) as responders_control,
        sum(case when member_group = 'target' then adopted else 0 end) as adopters_target,
        sum(case when member_group = 'control' then adopted else 0 end) as adopters_control,
        sum(case when member_group = 'target' then adoption_revenue else 0 end)
            as adoption_revenue_target,
        sum(case when member_group = 'control' then adoption_revenue else 0 end)
            as adoption_revenue_control,
        -- sums of squares, for the variance of revenue per member in each group
        sum(case when member_group = 'target' then adoption_revenue * adoption_revenue else 0 end)
            as adoption_revenue_squares_target,
        sum(case when member_group = 'control' then adoption_revenue * adoption_revenue else 0 end)
            as adoption_revenue_squares_control
    from members
    group by campaign_id
),

rates as (
    select
        c.*,
        g.members_target,
        g.members_control,
        g.responders_target,
        g.responders_control,
        g.adopters_target,
        g.adopters_control,
        g.adoption_revenue_target,
        g.adoption_revenue_control,
        g.adoption_revenue_squares_target,
        g.adoption_revenue_squares_control,
        {{ safe_ratio('g.responders_target', 'g.members_target') }} as response_rate_target,
        {{ safe_ratio('g.responders_control', 'g.members_control') }} as response_rate_control,
        {{ safe_ratio('g.adopters_target', 'g.members_target') }} as adoption_rate_target,
        {{ safe_ratio('g.adopters_control', 'g.members_control') }} as adoption_rate_control,
        {{ safe_ratio('g.adoption_revenue_target', 'g.members_target') }} as revenue_per_member_target,
        {{ safe_ratio('g.adoption_revenue_control', 'g.members_control') }} as revenue_per_member_control,
        {{ dbt.dateadd('day', var('lift_window_days'), 'c.actual_start') }}
            <= {{ as_of_cutoff() }} as is_window_closed
    from campaigns as c
    inner join by_group as g on c.campaign_id = g.campaign_id
    where g.members_target > 0 and g.members_control > 0
),

adjusted as (
    -- Agresti-Caffo: one success and one failure added to each group for the interval,
    -- which keeps its coverage near 95% with small control groups and rates near zero
    select
        *,
        cast(responders_target + 1 as double precision) / (members_target + 2) as rt_adj,
        cast(responders_control + 1 as double precision) / (members_control + 2) as rc_adj,
        cast(adopters_target + 1 as double precision) / (members_target + 2) as at_adj,
        cast(adopters_control + 1 as double precision) / (members_control + 2) as ac_adj
    from rates
),

lift as (
    select
        *,
        response_rate_target - response_rate_control as response_lift,
        adoption_rate_target - adoption_rate_control as adoption_lift,
        rt_adj - rc_adj as response_lift_centre,
        at_adj - ac_adj as adoption_lift_centre,
        1.96 * sqrt(
            rt_adj * (1 - rt_adj) / (members_target + 2)
            + rc_adj * (1 - rc_adj) / (members_control + 2)
        ) as response_lift_margin,
        1.96 * sqrt(
            at_adj * (1 - at_adj) / (members_target + 2)
            + ac_adj * (1 - ac_adj) / (members_control + 2)
        ) as adoption_lift_margin,
        (adoption_rate_target - adoption_rate_control) * members_target as incremental_adopters,
        (revenue_per_member_target - revenue_per_member_control) * members_target
            as incremental_revenue,
        -- the value of one adoption: the mean amount of the adoptions in either group, else
        -- the offer's list price (nobody adopted)
        coalesce(
            {{ safe_ratio('adoption_revenue_target + adoption_revenue_control',
                          'adopters_target + adopters_control') }},
            offer_list_price
        ) as adoption_value
    from adjusted
),

revenue_adjusted as (
    -- as Agresti-Caffo does for the rates: one adopter (at adoption_value) and one
    -- non-adopter added to each group, so a group where nobody (or everybody) adopted still
    -- has a variance, and a small control group gives a wide interval, not a narrow one
    select
        *,
        cast(adoption_revenue_target + adoption_value as double precision) / (members_target + 2)
            as rev_t_adj,
        cast(adoption_revenue_control + adoption_value as double precision) / (members_control + 2)
            as rev_c_adj,
        adoption_revenue_squares_target + adoption_value * adoption_value as sq_t_adj,
        adoption_revenue_squares_control + adoption_value * adoption_value as sq_c_adj
    from lift
),

revenue_interval as (
    -- normal approximation of the difference in mean offer revenue per member, with each
    -- group's own variance (Welch's standard error), times the target members
    -- (greatest: rounding must not take a zero variance below zero)
    select
        *,
        (rev_t_adj - rev_c_adj - 1.96 * revenue_per_member_se) * members_target
            as incremental_revenue_low,
        (rev_t_adj - rev_c_adj + 1.96 * revenue_per_member_se) * members_target
            as incremental_revenue_high
    from (
        select
            *,
            sqrt(
                greatest(sq_t_adj - (members_target + 2) * rev_t_adj * rev_t_adj, 0)
                    / (members_target + 1) / (members_target + 2)
                + greatest(sq_c_adj - (members_control + 2) * rev_c_adj * rev_c_adj, 0)
                    / (members_control + 1) / (members_control + 2)
            ) as revenue_per_member_se
        from revenue_adjusted
    ) as with_se
)

select
    campaign_id,
    campaign_name,
    channel,
    region,
    status,
    offer_product_id,
    actual_start,
    actual_end,
    is_window_closed,
    actual_cost,
    members_target,
    members_control,
    responders_target,
    responders_control,
    response_rate_target,
    response_rate_control,
    response_lift,
    response_lift_centre - response_lift_margin as response_lift_low,
    response_lift_centre + response_lift_margin as response_lift_high,
    adopters_target,
    adopters_control,
    adoption_rate_target,
    adoption_rate_control,
    adoption_lift,
    adoption_lift_centre - adoption_lift_margin as adoption_lift_low,
    adoption_lift_centre + adoption_lift_margin as adoption_lift_high,
    adoption_lift_centre - adoption_lift_margin > 0 as is_adoption_lift_significant,
    incremental_adopters,
    incremental_revenue,
    incremental_revenue_low,
    incremental_revenue_high,
    incremental_revenue - actual_cost as incremental_profit,
    {{ safe_ratio('incremental_revenue - actual_cost', 'actual_cost') }} as incremental_roi,
    {{ safe_ratio('incremental_revenue_low - actual_cost', 'actual_cost') }} as incremental_roi_low,
    {{ safe_ratio('incremental_revenue_high - actual_cost', 'actual_cost') }}
        as incremental_roi_high,
    actual_cost is not null and incremental_revenue >= actual_cost as is_paid_back
from revenue_interval
