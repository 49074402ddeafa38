-- Under every attribution model, the campaigns' contracts and revenue plus the share no
-- campaign earned add up to every contract signed by the as-of date.
{%- set models = ['source_campaign', 'first_touch', 'last_touch', 'linear', 'time_decay', 'position_based'] %}
with signed as (
    select count(*) as contracts, coalesce(sum(amount), 0) as revenue
    from {{ ref('stg_crm__contracts') }}
),
expected_models as (
    {%- for model in models %}
    select '{{ model }}' as attribution_model{% if not loop.last %} union all{% endif %}
    {%- endfor %}
),
credited as (
    select
        expected_models.attribution_model,
        coalesce(sum(attribution.contracts), 0) as contracts,
        coalesce(sum(attribution.revenue), 0) as revenue,
        count(attribution.attribution_model) as campaign_rows
    from expected_models
    left join {{ ref('fct_campaign_attribution') }} as attribution
        on expected_models.attribution_model = attribution.attribution_model
    group by expected_models.attribution_model
)
select credited.*, signed.contracts as signed_contracts, signed.revenue as signed_revenue
from credited cross join signed
-- each row is rounded (shares to 6 decimals, money to the cent): up to half a unit each
where abs(credited.contracts - signed.contracts) > 0.0000005 * credited.campaign_rows + 1e-9
    or abs(credited.revenue - signed.revenue) > 0.005 * credited.campaign_rows + 1e-6
