{#- Per sales pipeline and open stage, overall and per team, region and owner: how many
    entered, advanced to the next stage, dropped out (lost, suspended or terminated) or are
    still in it; the conversion rate among those that left the stage; median and p80 days
    in stage among those that left it. The stages and their order are the pipelines
    file's. -#}
with

stages as (
    select
        stages.*,
        opportunities.team,
        opportunities.sales_region,
        opportunities.owner_id
    from {{ ref('fct_opportunity_stages') }} as stages
    inner join {{ ref('fct_opportunities') }} as opportunities
        on stages.opportunity_id = opportunities.opportunity_id
    where stages.stage_kind = 'open'
),

pipeline_stages as (
    select * from {{ ref('stg_crm__sales_pipeline_stages') }}
),

by_dimension as (
    {%- for dimension, column in [('all', "'all'"), ('team', 'team'),
                                  ('region', 'sales_region'), ('owner', 'owner_id')] %}
    select
        pipeline_id,
        '{{ dimension }}' as dimension,
        coalesce(cast({{ column }} as {{ dbt.type_string() }}), 'unknown') as dimension_value,
        stage,
        stage_order,
        count(*) as entered,
        sum(case when outcome = 'advanced' then 1 else 0 end) as advanced,
        sum(case when outcome = 'lost' then 1 else 0 end) as lost,
        sum(case when outcome in ('suspended', 'terminated') then 1 else 0 end)
            as suspended_or_terminated,
        sum(case when outcome = 'open' then 1 else 0 end) as still_open,
        sum(case when outcome = 'moved_back' then 1 else 0 end) as moved_back,
        {{ percentile("case when outcome not in ('open', 'moved_back') then days_in_stage end", 0.5) }}
            as median_days_in_stage,
        {{ percentile("case when outcome not in ('open', 'moved_back') then days_in_stage end", 0.8) }}
            as p80_days_in_stage
    from stages
    group by 1, 2, 3, 4, 5
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

rated as (
    select
        by_dimension.dimension,
        by_dimension.dimension_value,
        by_dimension.stage,
        by_dimension.stage_order,
        pipeline_stages.next_stage,
        entered,
        advanced,
        lost,
        suspended_or_terminated,
        still_open,
        moved_back,
        {{ safe_ratio('advanced', 'advanced + lost + suspended_or_terminated') }}
            as conversion_rate,
        median_days_in_stage,
        p80_days_in_stage,
        by_dimension.pipeline_id
    from by_dimension
    left join pipeline_stages
        on by_dimension.pipeline_id = pipeline_stages.pipeline_id
        and by_dimension.stage = pipeline_stages.stage
)

select * from rated
