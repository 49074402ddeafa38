{#- One verdict per campaign, with the three returns it weighs side by side: the gross ROI
    (contract revenue credited by the default attribution model), the margin ROI, and the
    incremental ROI measured against the holdout: the offer revenue the campaign added,
    with its 95% interval (fct_campaign_lift).

    Gross and margin ROI credit a campaign with every contract it touched, including those
    that would have closed without it; only the holdout says what the campaign changed. So
    the verdict rests on the holdout, and the gross figure explains the disagreement. With
    C the cost and [low, high] the incremental revenue's interval, rules tried in order:
      not started       the campaign has not started
      not measurable    no offer to measure, or no target and control group
      too early         the lift window is still open
      not measurable    no cost recorded (null or 0), or no value for an adoption
      paid back         low > C: the campaign surely returned its cost
      inconclusive      low <= C <= high: the holdout cannot tell (too small, or the
                        return sits near break-even)
      gross only        high < C, yet the attributed revenue covers C: the campaign surely
                        did not return its cost, though gross ROI says it did
      lift below cost   high < C and low > 0: a real lift that surely did not pay
      not paid back     high < C and no sure lift
    `verdict_reason` states the figures behind each. -#}
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
            when coalesce(actual_cost, 0) <= 0 or incremental_revenue_low is null
                then 'not measurable'
            when incremental_revenue_low > actual_cost then 'paid back'
            when incremental_revenue_high >= actual_cost then 'inconclusive'
            when revenue >= actual_cost then 'gross only'
            when incremental_revenue_low > 0 then 'lift below cost'
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
                    'No target and control group to compare: only the gross ROI ('
                    || {{ percent_text('roi') }}
                    || ') is known, and it counts sales that would have happened anyway.'
                when coalesce(actual_cost, 0) <= 0 then 'No cost recorded.'
                else 'No price or adoption amount to value the lift.'
            end
        when 'too early' then
            'The lift window ends on ' || cast(cast(lift_window_end as date) as {{ dbt.type_string() }})
            || '; the figures are still moving.'
        when 'paid back' then
            'Incremental revenue ' || {{ interval_text() }} || ' exceeds the cost of '
            || {{ money_text('actual_cost') }} || '.'
        when 'inconclusive' then
            'Incremental revenue ' || {{ interval_text() }} || ' may or may not cover the cost of '
            || {{ money_text('actual_cost') }} || ': with a holdout of '
            || cast(members_control as {{ dbt.type_string() }})
            || ' members the interval spans it (gross ROI ' || {{ percent_text('roi') }} || ').'
        when 'gross only' then
            'Attributed revenue covers the cost (gross ROI ' || {{ percent_text('roi') }}
            || '), but the holdout shows incremental revenue of only ' || {{ interval_text() }}
            || ', below the cost of ' || {{ money_text('actual_cost') }}
            || ': most of the attributed sales did not depend on the campaign.'
        when 'lift below cost' then
            'A real lift, but incremental revenue ' || {{ interval_text() }}
            || ' stays below the cost of ' || {{ money_text('actual_cost') }} || '.'
        else
            'Incremental revenue ' || {{ interval_text() }} || ' stays below the cost of '
            || {{ money_text('actual_cost') }} || ', and attributed revenue ('
            || {{ money_text('revenue') }} || ') does not cover it either.'
    end as verdict_reason
from judged
