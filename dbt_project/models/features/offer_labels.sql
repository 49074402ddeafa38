{#- Labels for the target-customer models: for each offer and each feature date T whose
    horizon has passed by the as-of date, one row per customer in the feature mart on T who
    had not adopted the offer by T, with whether they adopted it in (T, T + horizon]. -#}

with

features as (
    select as_of_date, customer_id from {{ ref('customer_features') }}
),

offers as (
    select product_id as offer_id from {{ ref('stg_crm__products') }} where is_offer
),

adoptions as (
    select customer_id, product_id as offer_id, adopted_at
    from {{ ref('int_offer_adoptions_attributed') }}
),

observed as (
    -- feature dates whose whole label window lies on or before the as-of date
    select
        as_of_date,
        cast(as_of_date as timestamp) + interval '1 day' as cutoff,
        cast(as_of_date as timestamp) + interval '1 day'
            + interval '{{ var("label_horizon_days") }} days' as horizon_end
    from (select distinct as_of_date from features) as dates
    where {{ dbt.dateadd('day', var('label_horizon_days'), 'as_of_date') }} <= {{ as_of_date() }}
),

labelled as (
    select
        observed.as_of_date,
        offers.offer_id,
        features.customer_id,
        adoptions.adopted_at is not null and adoptions.adopted_at < observed.horizon_end
            as adopted,
        case when adoptions.adopted_at < observed.horizon_end then adoptions.adopted_at end
            as adopted_at
    from observed
    inner join features on features.as_of_date = observed.as_of_date
    cross join offers
    left join adoptions
        on adoptions.customer_id = features.customer_id
        and adoptions.offer_id = offers.offer_id
    -- customers who already had the offer on T are not in the population
    where adoptions.adopted_at is null or adoptions.adopted_at >= observed.cutoff
)

select * from labelled
