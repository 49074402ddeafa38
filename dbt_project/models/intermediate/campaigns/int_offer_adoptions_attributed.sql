{#- Each customer's first completed purchase of an offer (the adoption), and the campaign
    promoting that offer that last touched the customer in the `attribution_lookback_days`
    before it, if any. -#}
with

adoptions as (
    select customer_id, product_id, occurred_at as adopted_at, amount
    from (
        select
            customer_id,
            product_id,
            occurred_at,
            amount,
            row_number() over (
                partition by customer_id, product_id order by occurred_at, transaction_id
            ) as purchase_number
        from {{ ref('int_transactions_enriched') }}
        where is_completed and is_offer_product
    ) as purchases
    where purchase_number = 1
),

touches as (
    select touches.customer_id, touches.campaign_id, touches.occurred_at, campaigns.offer_product_id
    from {{ ref('int_interactions_flagged') }} as touches
    inner join {{ ref('stg_crm__campaigns') }} as campaigns
        on touches.campaign_id = campaigns.campaign_id
    where touches.is_campaign_touch
),

ranked as (
    select
        adoptions.customer_id,
        adoptions.product_id,
        touches.campaign_id,
        row_number() over (
            partition by adoptions.customer_id, adoptions.product_id
            order by touches.occurred_at desc, touches.campaign_id
        ) as recency
    from adoptions
    inner join touches
        on adoptions.customer_id = touches.customer_id
        and adoptions.product_id = touches.offer_product_id
        and touches.occurred_at <= adoptions.adopted_at
        and touches.occurred_at > {{ dbt.dateadd('day', -var('attribution_lookback_days'), 'adoptions.adopted_at') }}
),

attributed as (
    select
        adoptions.customer_id,
        adoptions.product_id,
        adoptions.adopted_at,
        adoptions.amount,
        ranked.campaign_id
    from adoptions
    left join ranked
        on adoptions.customer_id = ranked.customer_id
        and adoptions.product_id = ranked.product_id
        and ranked.recency = 1
)

select * from attributed
