{#- One row per campaign member known on the as-of date: target or control group, when
    added, when they responded, and the campaign's status (the audience releases keep the
    control groups of running campaigns out of other campaigns' lists). -#}
with

members as (
    select * from {{ ref('stg_crm__campaign_members') }}
),

campaigns as (
    select campaign_id, status from {{ ref('stg_crm__campaigns') }}
),

described as (
    select
        members.campaign_id,
        members.customer_id,
        members.member_group,
        members.member_source,
        members.added_at,
        members.responded_at,
        campaigns.status as campaign_status
    from members
    left join campaigns on members.campaign_id = campaigns.campaign_id
)

select * from described
