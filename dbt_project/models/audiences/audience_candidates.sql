{#- The suppression rule: every row of every scored list (ml.offer_audiences, one per date,
    offer and customer) with the contact fields and the first reason the customer may not
    be contacted for the offer's campaign on that date (null: keep). In the order checked:

    1. already_adopted: a completed purchase of the offer before the end of the date;
    2. opted_out: an unsubscribe the newest customer 360 knows, whatever the date;
    3. other_campaign_holdout: in the control group of another campaign running in the
       CRM, in a holdout of our releases of another campaign in the `holdout_protect_days`
       before the date, or in the holdout another offer's list draws the same day;
    4. cooling_off: contacted by another campaign in the `cooling_off_days` up to the end
       of the date;
    5. invalid_contact: no e-mail address and no phone number to reach (audience_contacts).

    A campaign's own control group and its own touches never suppress its members. Which
    campaign an offer goes out as, and the two windows, come from activation/config.yml
    (activation.campaign_settings); the same day's holdouts are drawn by activation
    (activation.same_day_holdouts), both written before a release reads this view. -#}
with

lists as (
    select * from {{ source('ml', 'offer_audiences') }}
),

settings as (
    select * from {{ source('activation', 'campaign_settings') }}
),

scored as (
    select
        lists.*,
        settings.campaign_id,
        settings.cooling_off_days,
        settings.holdout_protect_days,
        {{ dbt.dateadd('day', 1, 'cast(lists.as_of_date as timestamp)') }} as cutoff
    from lists
    inner join settings on lists.offer_id = settings.offer_id
),

adoptions as (
    select customer_id, offer_id, adopted_at from {{ ref('fct_offer_adoptions') }}
),

opted_out as (
    select customer_id from {{ ref('dim_customers') }} where is_opted_out
),

crm_control_groups as (
    select customer_id, campaign_id
    from {{ ref('fct_campaign_members') }}
    where member_group = 'control' and campaign_status = 'running'
),

released_holdouts as (
    select customer_id, campaign_id, as_of_date
    from {{ source('activation', 'campaign_audiences') }}
    where "group" = 'holdout'
),

same_day_holdouts as (
    select as_of_date, offer_id, customer_id
    from {{ source('activation', 'same_day_holdouts') }}
),

campaign_touches as (
    select customer_id, campaign_id, occurred_at
    from {{ ref('fct_interactions') }}
    where is_campaign_touch
),

contacts as (
    select * from {{ ref('audience_contacts') }}
),

judged as (
    select
        scored.as_of_date,
        scored.offer_id,
        scored.campaign_id,
        scored.customer_id,
        scored.score,
        scored.band,
        scored.decile,
        scored.rule_id,
        scored.rule,
        scored.list_rank,
        scored.expected_value,
        scored.model_version,
        scored.selected_by,
        contacts.full_name,
        contacts.email,
        contacts.phone,
        case
            when exists (
                select 1 from adoptions
                where adoptions.customer_id = scored.customer_id
                  and adoptions.offer_id = scored.offer_id
                  and adoptions.adopted_at < scored.cutoff
            ) then 'already_adopted'
            when exists (
                select 1 from opted_out where opted_out.customer_id = scored.customer_id
            ) then 'opted_out'
            when exists (
                select 1 from crm_control_groups as controls
                where controls.customer_id = scored.customer_id
                  and controls.campaign_id <> scored.campaign_id
            ) or exists (
                select 1 from released_holdouts as released
                where released.customer_id = scored.customer_id
                  and released.campaign_id <> scored.campaign_id
                  and released.as_of_date < scored.as_of_date
                  and released.as_of_date >= {{ dbt.dateadd('day', '-scored.holdout_protect_days', 'scored.as_of_date') }}
            ) or exists (
                select 1 from same_day_holdouts as same_day
                where same_day.customer_id = scored.customer_id
                  and same_day.as_of_date = scored.as_of_date
                  and same_day.offer_id <> scored.offer_id
            ) then 'other_campaign_holdout'
            when exists (
                select 1 from campaign_touches as touches
                where touches.customer_id = scored.customer_id
                  and touches.campaign_id is distinct from scored.campaign_id
                  and touches.occurred_at >= {{ dbt.dateadd('day', '-scored.cooling_off_days', 'scored.cutoff') }}
                  and touches.occurred_at < scored.cutoff
            ) then 'cooling_off'
            when not coalesce(contacts.has_valid_contact, false) then 'invalid_contact'
        end as suppressed_because
    from scored
    left join contacts on scored.customer_id = contacts.customer_id
)

select * from judged
