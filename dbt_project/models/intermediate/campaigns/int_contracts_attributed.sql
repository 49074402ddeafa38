{#- Which campaign earned each contract. The rule, in order:
    1. source_campaign: the contract's opportunity has a source campaign;
    2. last_touch: otherwise, the customer's last campaign contact in the
       `attribution_lookback_days` (default 30) before signing;
    3. none. -#}
with

contracts as (
    select * from {{ ref('stg_crm__contracts') }}
),

opportunities as (
    select opportunity_id, campaign_id as source_campaign_id from {{ ref('stg_crm__opportunities') }}
),

touches as (
    select customer_id, campaign_id, occurred_at
    from {{ ref('int_interactions_flagged') }}
    where is_campaign_touch
),

last_touch as (
    select contract_id, campaign_id
    from (
        select
            contracts.contract_id,
            touches.campaign_id,
            row_number() over (
                partition by contracts.contract_id
                order by touches.occurred_at desc, touches.campaign_id
            ) as recency
        from contracts
        inner join touches
            on contracts.customer_id = touches.customer_id
            and touches.occurred_at <= contracts.signed_at
            and touches.occurred_at > {{ dbt.dateadd('day', -var('attribution_lookback_days'), 'contracts.signed_at') }}
    ) as ranked
    where recency = 1
),

attributed as (
    select
        contracts.contract_id,
        contracts.opportunity_id,
        contracts.customer_id,
        contracts.signed_at,
        contracts.amount,
        coalesce(opportunities.source_campaign_id, last_touch.campaign_id) as campaign_id,
        case
            when opportunities.source_campaign_id is not null then 'source_campaign'
            when last_touch.campaign_id is not null then 'last_touch'
            else 'none'
        end as attribution_rule
    from contracts
    left join opportunities on contracts.opportunity_id = opportunities.opportunity_id
    left join last_touch on contracts.contract_id = last_touch.contract_id
)

select * from attributed
