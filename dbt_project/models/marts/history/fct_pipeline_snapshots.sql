{#- The open pipeline as each run saw it: one row per as-of date and open deal, with the
    forecast made that day (stage, days in it, win probability and its basis, expected
    amount, category, expected close date). A history mart: every run replaces its own
    as-of date and keeps the others, and a full refresh never empties it, so `crm
    backfill --every month-end` fills past month ends and fct_forecast_accuracy compares
    them with what closed. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    full_refresh=false,
    on_schema_change='append_new_columns',
    pre_hook=["{{ forget_this_as_of_date() }}"],
) }}

select
    {{ as_of_date() }} as as_of_date,
    opportunity_id,
    pipeline_id,
    owner_id,
    team,
    sales_region,
    current_stage,
    days_in_current_stage,
    is_stalled,
    amount,
    win_probability,
    win_probability_basis,
    expected_amount,
    forecast_category,
    cast(expected_close_date as date) as expected_close_date
from {{ ref('fct_pipeline_forecast') }}
