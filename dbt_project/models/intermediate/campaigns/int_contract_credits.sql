{#- How much of each contract each campaign earns, under every attribution model: one row
    per contract x model x credited campaign, whose `credit` shares add up to 1 for each
    contract and model (campaign_id null: the share no campaign earned).

    Touches are the customer's campaign contacts in the `attribution_lookback_days` before
    signing, in time order. The models:
    - source_campaign: the opportunity's source campaign, else the last touch
      (int_contracts_attributed);
    - first_touch, last_touch: all of it to the first or the last touch;
    - linear: an equal share per touch;
    - time_decay: shares halving every `attribution_half_life_days` before signing;
    - position_based: 40% to the first touch, 40% to the last, 20% shared by those between
      (one touch takes all; two take half each).
    A campaign touching a contract several times adds up its shares. A contract without a
    touch is credited to nobody under the touch models. Touches at the same moment are
    ordered by campaign id, descending (so the last of them is the smallest id, as in
    int_contracts_attributed), then by interaction id.

    Margin: the contract's amount x its product's margin rate ((list price - unit cost) /
    list price). The product is the opportunity's; a contract without an opportunity (a
    renewal) renews the customer's latest earlier contract that had one. -#}
{%- set models = ['source_campaign', 'first_touch', 'last_touch', 'linear', 'time_decay', 'position_based'] -%}
{%- if var('attribution_model') not in models -%}
    {{ exceptions.raise_compiler_error(
        "attribution_model must be one of " ~ models | join(', ') ~ ", not '" ~ var('attribution_model') ~ "'") }}
{%- endif -%}
{%- if var('attribution_half_life_days') | float <= 0 -%}
    {{ exceptions.raise_compiler_error(
        "attribution_half_life_days must be a positive number of days, not '" ~ var('attribution_half_life_days') ~ "'") }}
{%- endif -%}
with

contracts as (
    select * from {{ ref('int_contracts_attributed') }}
),

products as (
    select
        product_id,
        (list_price - unit_cost) / nullif(list_price, 0) as margin_rate
    from {{ ref('stg_crm__products') }}
),

opportunity_products as (
    select contracts.contract_id, contracts.customer_id, contracts.signed_at, opportunities.product_id
    from contracts
    inner join {{ ref('stg_crm__opportunities') }} as opportunities
        on contracts.opportunity_id = opportunities.opportunity_id
    where opportunities.product_id is not null
),

renewed_products as (
    select contract_id, product_id
    from (
        select
            contracts.contract_id,
            earlier.product_id,
            row_number() over (
                partition by contracts.contract_id
                order by earlier.signed_at desc, earlier.contract_id desc
            ) as recency
        from contracts
        inner join opportunity_products as earlier
            on contracts.customer_id = earlier.customer_id
            and earlier.signed_at < contracts.signed_at
        where contracts.opportunity_id is null
    ) as ranked
    where recency = 1
),

contract_margins as (
    select
        contracts.contract_id,
        contracts.amount * products.margin_rate as margin
    from contracts
    left join opportunity_products on contracts.contract_id = opportunity_products.contract_id
    left join renewed_products on contracts.contract_id = renewed_products.contract_id
    left join products
        on coalesce(opportunity_products.product_id, renewed_products.product_id) = products.product_id
),

touches as (
    select
        contracts.contract_id,
        touches.campaign_id,
        row_number() over (
            partition by contracts.contract_id
            order by touches.occurred_at, touches.campaign_id desc, touches.interaction_id
        ) as touch_number,
        count(*) over (partition by contracts.contract_id) as touch_count,
        power(
            0.5,
            {{ days_between('touches.occurred_at', 'contracts.signed_at') }}
                / {{ var('attribution_half_life_days') }}
        ) as decay_weight
    from contracts
    inner join {{ ref('int_interactions_flagged') }} as touches
        on contracts.customer_id = touches.customer_id
        and touches.is_campaign_touch
        and touches.occurred_at <= contracts.signed_at
        and touches.occurred_at > {{ dbt.dateadd('day', -var('attribution_lookback_days'), 'contracts.signed_at') }}
),

untouched as (
    select contracts.contract_id
    from contracts
    left join (select distinct contract_id from touches) as touched
        on contracts.contract_id = touched.contract_id
    where touched.contract_id is null
),

touch_shares as (
    select
        contract_id,
        campaign_id,
        case when touch_number = 1 then 1.0 else 0.0 end as first_touch,
        case when touch_number = touch_count then 1.0 else 0.0 end as last_touch,
        1.0 / touch_count as linear,
        decay_weight / sum(decay_weight) over (partition by contract_id) as time_decay,
        case
            when touch_count = 1 then 1.0
            when touch_count = 2 then 0.5
            when touch_number = 1 or touch_number = touch_count then 0.4
            else 0.2 / (touch_count - 2)
        end as position_based
    from touches
),

shares as (
    select contract_id, 'source_campaign' as attribution_model, campaign_id, 1.0 as credit
    from contracts
    {%- for model in models[1:] %}
    union all
    select contract_id, '{{ model }}', campaign_id, {{ model }} from touch_shares
    {%- endfor %}
    {%- for model in models[1:] %}
    union all
    select contract_id, '{{ model }}', null, 1.0 from untouched
    {%- endfor %}
),

credits as (
    select
        contract_id,
        attribution_model,
        campaign_id,
        cast(sum(credit) as double precision) as credit
    from shares
    group by contract_id, attribution_model, campaign_id
)

select
    credits.contract_id,
    contracts.customer_id,
    contracts.signed_at,
    credits.attribution_model,
    credits.campaign_id,
    credits.credit,
    case
        when credits.attribution_model = 'source_campaign' then contracts.attribution_rule
        when credits.campaign_id is null then 'none'
        else 'touch'
    end as credited_by,
    contracts.amount as contract_amount,
    credits.credit * contracts.amount as revenue,
    credits.credit * contract_margins.margin as margin
from credits
inner join contracts on credits.contract_id = contracts.contract_id
inner join contract_margins on credits.contract_id = contract_margins.contract_id
