{#- One verdict per campaign, with the three returns it weighs side by side: the gross ROI
    (attributed contract revenue under the default attribution model), the margin ROI, and
    the incremental ROI measured against the holdout with its 95% interval.

    Gross and margin ROI credit a campaign with every contract it touched, including those
    that would have closed without it; only the holdout says what the campaign changed. So
    the verdict rests on the holdout, and the gross figure explains the disagreement:
      not started       the campaign has not started
      not measurable    no offer to measure or no control group
      too early         the lift window is still open
      not measurable    no cost recorded, or a group of a single member (no interval)
      paid back         the incremental revenue's lower 95% bound exceeds the cost
      lift below cost   a real lift (lower bound above zero) that does not cover the cost
      gross only        no significant lift, but the attributed revenue covers the cost:
                        the buyers would most likely have bought anyway
      not paid back     neither
    The rules are tried in this order; `verdict_reason` states the figures behind each. -#}
with

performance as (
    select
        campaign_id, campaign_name, channel, region, status, budget_band, offer_product_id,
        actual_start, actual_cost, attribution_model, revenue, margin, roi, margin_roi
    from {{ ref('fct_campaign_performance') }}
),

lift as (
    select
        campaign_id, is_window_closed, members_target, members_control,
        adoption_lift, adoption_lift_low, adoption_lift_high, incremental_adopters,
        incremental_revenue, incremental_revenue_low, incremental_revenue_high,
        incremental_roi, incremental_roi_low, incremental_roi_high
    from {{ ref('fct_campaign_lift') }}
),

joined as (
    select
        p.*,
        {{ dbt.dateadd('day', var('lift_window_days'), 'p.actual_start') }} as lift_window_end,
        l.is_window_closed,
        l.members_target,
        l.members_control,
        l.adoption_lift,
        l.adoption_lift_low,
        l.adoption_lift_high,
        l.incremental_adopters,
        l.incremental_revenue,
        l.incremental_revenue_low,
        l.incremental_revenue_high,
        l.incremental_roi,
        l.incremental_roi_low,
        l.incremental_roi_high
    from performance as p
    left join lift as l on p.campaign_id = l.campaign_id
),

judged as (
    select
        *,
        case
            when actual_start is null then 'not started'
            when offer_product_id is null or members_control is null then 'not measurable'
            when not is_window_closed then 'too early'
            when actual_cost is null or incremental_revenue_low is null then 'not measurable'
            when incremental_revenue_low > actual_cost then 'paid back'
            when incremental_revenue_low > 0 then 'lift below cost'
            when revenue >= actual_cost then 'gross only'
            else 'not paid back'
        end as verdict
    from joined
)

select
    *,
    case verdict
        when 'not started' then
            case when status = 'cancelled' then 'Cancelled before it started.'
                else 'The campaign has not started.' end
        when 'not measurable' then
            case
                when offer_product_id is null then
                    'No offer: adoption cannot be measured against a holdout.'
                when members_control is null then
                    'No target and control group to compare: only the gross ROI (' || {{ percent_text('roi') }}
                    || ') is known, and it counts buyers who would have bought anyway.'
                when actual_cost is null then 'No cost recorded.'
                else 'A group of one member: too small for an interval.'
            end
        when 'too early' then
            'The lift window ends on ' || cast(cast(lift_window_end as date) as {{ dbt.type_string() }})
            || '; the figures are still moving.'
        when 'paid back' then
            'Incremental revenue ' || {{ money_text('incremental_revenue_low') }} || ' to '
            || {{ money_text('incremental_revenue_high') }} || ' (95%) exceeds the cost of '
            || {{ money_text('actual_cost') }} || '.'
        when 'lift below cost' then
            'A real lift, but incremental revenue ' || {{ money_text('incremental_revenue_low') }}
            || ' to ' || {{ money_text('incremental_revenue_high') }}
            || ' (95%) does not surely cover the cost of ' || {{ money_text('actual_cost') }}
            || case when revenue >= actual_cost
                then '; the gross ROI of ' || {{ percent_text('roi') }}
                    || ' credits sales that would have happened anyway.'
                else '.' end
        when 'gross only' then
            'Attributed revenue covers the cost (gross ROI ' || {{ percent_text('roi') }}
            || '), but the holdout shows no significant lift (incremental revenue '
            || {{ money_text('incremental_revenue_low') }} || ' to '
            || {{ money_text('incremental_revenue_high') }}
            || ', 95%): the buyers would most likely have bought anyway.'
        else
            'Neither the attributed revenue (' || {{ money_text('revenue') }}
            || ') nor the incremental revenue (' || {{ money_text('incremental_revenue') }}
            || ') covers the cost of ' || {{ money_text('actual_cost') }} || '.'
    end as verdict_reason
from judged
