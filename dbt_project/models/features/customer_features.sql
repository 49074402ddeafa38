{#- One row per customer and feature date T: what a target-customer model may know about a
    customer on T, from the same marts the reports use. Point in time: only events before
    the end of T count, the customer record is the version current on T, a refund or
    cancellation recorded after T is not yet one, and an opportunity closed after T was
    still open. Built for the dates in the `feature_dates` var (see macros/features.sql). -#}

with

dates as (
    {{ feature_dates_relation() }}
),

customer_versions as (
    select * from {{ ref('stg_crm__customer_versions') }}
),

customers_on_date as (
    -- the version current on each date; a customer created after the date is not there
    select *
    from (
        select
            dates.as_of_date,
            dates.cutoff,
            versions.*,
            row_number() over (
                partition by dates.as_of_date, versions.customer_id
                order by
                    case when versions.updated_at is null
                           or versions.updated_at < dates.cutoff then 0 else 1 end,
                    case when versions.updated_at < dates.cutoff
                         then versions.updated_at end desc nulls last,
                    versions.updated_at asc nulls last,
                    versions._loaded_at desc,
                    versions._row_number desc
            ) as version_rank
        from dates
        inner join customer_versions as versions
            on versions.created_at is null
            or versions.created_at < dates.cutoff
    ) as ranked
    where version_rank = 1
),

purchases as (
    select
        dates.as_of_date,
        transactions.customer_id,
        count(*) as orders,
        sum(transactions.amount) as lifetime_revenue,
        max(transactions.occurred_at) as last_purchase_at,
        sum(case when transactions.occurred_at >= dates.cutoff - interval '90 days'
                 then transactions.amount else 0 end) / 3.0 as monthly_spend_3m,
        sum(case when transactions.occurred_at >= dates.cutoff - interval '180 days'
                 then transactions.amount else 0 end) / 6.0 as monthly_spend_6m,
        sum(case when transactions.occurred_at >= dates.cutoff - interval '365 days'
                 then transactions.amount else 0 end) / 12.0 as monthly_spend_12m,
        sum(case when transactions.occurred_at >= dates.cutoff - interval '90 days'
                 then 1 else 0 end) as orders_90d,
        count(distinct case when transactions.is_offer_product
                            then transactions.product_id end) as offers_adopted
    from dates
    inner join {{ ref('fct_transactions') }} as transactions
        on transactions.occurred_at < dates.cutoff
    -- completed on the date: a refund or cancellation recorded later had not happened yet
    where transactions.is_completed or transactions.updated_at >= dates.cutoff
    group by dates.as_of_date, transactions.customer_id
),

contacts as (
    select
        dates.as_of_date,
        interactions.customer_id,
        sum(case when interactions.occurred_at >= dates.cutoff - interval '30 days'
                 then 1 else 0 end) as interactions_30d,
        sum(case when interactions.occurred_at >= dates.cutoff - interval '90 days'
                 then 1 else 0 end) as interactions_90d,
        {%- for name, condition in [
            ('email_opens_90d', "interaction_type = 'open'"),
            ('clicks_90d', "interaction_type = 'click'"),
            ('web_visits_90d', "interaction_type = 'visit' and channel = 'web'"),
            ('app_visits_90d', "interaction_type = 'visit' and channel = 'app'"),
            ('store_visits_90d', "interaction_type = 'visit' and channel = 'store'"),
            ('calls_90d', "interaction_type = 'call'"),
            ('inquiries_90d', "interaction_type = 'inquiry'"),
            ('service_requests_90d', "interaction_type = 'service_request'"),
            ('complaints_90d', "interaction_type = 'complaint'"),
            ('campaign_touches_90d', "is_campaign_touch"),
            ('responses_90d', "is_response"),
        ] %}
        sum(case when interactions.occurred_at >= dates.cutoff - interval '90 days'
                  and {{ condition }} then 1 else 0 end) as {{ name }},
        {%- endfor %}
        sum(case when interaction_type = 'complaint' then 1 else 0 end) as complaints_365d,
        max(interactions.occurred_at) as last_interaction_at
    from dates
    inner join {{ ref('fct_interactions') }} as interactions
        on interactions.occurred_at < dates.cutoff
        and interactions.occurred_at >= dates.cutoff - interval '365 days'
    group by dates.as_of_date, interactions.customer_id
),

opt_outs as (
    select dates.as_of_date, interactions.customer_id
    from dates
    inner join {{ ref('fct_interactions') }} as interactions
        on interactions.occurred_at < dates.cutoff and interactions.is_opt_out
    group by dates.as_of_date, interactions.customer_id
),

funnel as (
    select
        dates.as_of_date,
        opportunities.customer_id,
        count(*) as opportunities,
        sum(case when opportunities.closed_at is null or opportunities.closed_at >= dates.cutoff
                 then 1 else 0 end) as open_opportunities,
        sum(case when opportunities.is_won and opportunities.closed_at < dates.cutoff
                 then 1 else 0 end) as won_opportunities
    from dates
    inner join {{ ref('fct_opportunities') }} as opportunities
        on opportunities.created_at < dates.cutoff
    group by dates.as_of_date, opportunities.customer_id
),

campaigns as (
    select
        dates.as_of_date,
        members.customer_id,
        count(*) as campaigns_targeted_365d
    from dates
    inner join {{ ref('stg_crm__campaign_members') }} as members
        on members.added_at < dates.cutoff
        and members.added_at >= dates.cutoff - interval '365 days'
        and members.member_group = 'target'
    group by dates.as_of_date, members.customer_id
),

joined as (
    select
        customers.as_of_date,
        customers.customer_id,
        floor({{ dbt.datediff('customers.birth_date', 'customers.as_of_date', 'day') }} / 365.25)
            as age,
        customers.gender,
        customers.marital_status,
        customers.occupation,
        customers.industry,
        customers.monthly_income,
        customers.region,
        customers.acquisition_channel,
        {{ dbt.datediff('cast(customers.created_at as date)', 'customers.as_of_date', 'day') }}
            as tenure_days,

        coalesce(purchases.orders, 0) as orders,
        coalesce(purchases.lifetime_revenue, 0) as lifetime_revenue,
        {{ safe_ratio('purchases.lifetime_revenue', 'purchases.orders') }} as average_order_value,
        {{ dbt.datediff('cast(purchases.last_purchase_at as date)', 'customers.as_of_date', 'day') }}
            as days_since_last_purchase,
        coalesce(purchases.monthly_spend_3m, 0) as monthly_spend_3m,
        coalesce(purchases.monthly_spend_6m, 0) as monthly_spend_6m,
        coalesce(purchases.monthly_spend_12m, 0) as monthly_spend_12m,
        coalesce(purchases.orders_90d, 0) as orders_90d,
        coalesce(purchases.offers_adopted, 0) as offers_adopted,

        coalesce(contacts.interactions_30d, 0) as interactions_30d,
        coalesce(contacts.interactions_90d, 0) as interactions_90d,
        {%- for name in ['email_opens_90d', 'clicks_90d', 'web_visits_90d', 'app_visits_90d',
                         'store_visits_90d', 'calls_90d', 'inquiries_90d',
                         'service_requests_90d', 'complaints_90d', 'campaign_touches_90d',
                         'responses_90d', 'complaints_365d'] %}
        coalesce(contacts.{{ name }}, 0) as {{ name }},
        {%- endfor %}
        {{ dbt.datediff('cast(contacts.last_interaction_at as date)', 'customers.as_of_date', 'day') }}
            as days_since_last_interaction,
        opt_outs.customer_id is not null as is_opted_out,

        coalesce(funnel.opportunities, 0) as opportunities,
        coalesce(funnel.open_opportunities, 0) as open_opportunities,
        coalesce(funnel.won_opportunities, 0) as won_opportunities,
        coalesce(campaigns.campaigns_targeted_365d, 0) as campaigns_targeted_365d
    from customers_on_date as customers
    left join purchases
        on customers.as_of_date = purchases.as_of_date
        and customers.customer_id = purchases.customer_id
    left join contacts
        on customers.as_of_date = contacts.as_of_date
        and customers.customer_id = contacts.customer_id
    left join opt_outs
        on customers.as_of_date = opt_outs.as_of_date
        and customers.customer_id = opt_outs.customer_id
    left join funnel
        on customers.as_of_date = funnel.as_of_date
        and customers.customer_id = funnel.customer_id
    left join campaigns
        on customers.as_of_date = campaigns.as_of_date
        and customers.customer_id = campaigns.customer_id
),

rfm as (
    -- RFM quintiles among the buyers of each date, as in dim_customers
    select
        as_of_date,
        customer_id,
        {{ quintile('days_since_last_purchase desc', 'as_of_date') }} as recency_score,
        {{ quintile('orders', 'as_of_date') }} as frequency_score,
        {{ quintile('lifetime_revenue', 'as_of_date') }} as monetary_score
    from joined
    where orders > 0
),

described as (
    select
        joined.*,
        case
            when joined.age < 20 then 'under 20'
            when joined.age < 30 then '20-29'
            when joined.age < 40 then '30-39'
            when joined.age < 50 then '40-49'
            when joined.age < 60 then '50-59'
            when joined.age >= 60 then '60+'
        end as age_band,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score
    from joined
    left join rfm
        on joined.as_of_date = rfm.as_of_date and joined.customer_id = rfm.customer_id
)

select * from described
