{#- Per customer: contact history that marketing acts on (opt-outs, complaints, recent
    campaign contacts and responses). -#}
with

interactions as (
    select * from {{ ref('int_interactions_flagged') }}
),

summarised as (
    select
        customer_id,
        max(occurred_at) as last_interaction_at,
        max(case when is_campaign_touch then occurred_at end) as last_campaign_touch_at,
        max(case when is_opt_out then occurred_at end) as opted_out_at,
        sum(case when is_complaint and occurred_at >= {{ dbt.dateadd('day', -89, as_of_date()) }}
                 then 1 else 0 end) as complaints_90d,
        sum(case when is_response and occurred_at >= {{ dbt.dateadd('day', -89, as_of_date()) }}
                 then 1 else 0 end) as responses_90d,
        sum(case when occurred_at >= {{ dbt.dateadd('day', -89, as_of_date()) }}
                 then 1 else 0 end) as interactions_90d
    from interactions
    group by customer_id
)

select * from summarised
