-- Campaign revenue is exactly the contracts credited to known campaigns.
with campaigns as (
    select sum(revenue) as revenue, sum(contracts) as contracts
    from {{ ref('fct_campaign_performance') }}
),
credited as (
    select coalesce(sum(amount), 0) as revenue, count(*) as contracts
    from {{ ref('int_contracts_attributed') }}
    where campaign_id in (select campaign_id from {{ ref('stg_crm__campaigns') }})
)
select *
from campaigns cross join credited
where campaigns.revenue <> credited.revenue or campaigns.contracts <> credited.contracts
