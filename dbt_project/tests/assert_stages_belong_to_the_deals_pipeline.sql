{{ config(severity='warn') }}
{#- A deal's stage, reported or in its history, that its pipeline does not declare (it is
    one of another pipeline's, since ingestion accepts only declared stage values): the
    funnel marts cannot place it, so the deal's current stage is unknown and that stay is
    left out of the conversion rates. Usually a deal filed under the wrong pipeline_id. -#}
select opportunities.opportunity_id, opportunities.stage, pipelined.pipeline_id
from {{ ref('stg_crm__opportunities') }} as opportunities
inner join {{ ref('int_opportunities_pipelined') }} as pipelined
    on opportunities.opportunity_id = pipelined.opportunity_id
where opportunities.stage is not null and pipelined.reported_stage is null

union all

select opportunity_id, stage, pipeline_id
from {{ ref('int_opportunity_stages_sequenced') }}
where stage_kind is null
