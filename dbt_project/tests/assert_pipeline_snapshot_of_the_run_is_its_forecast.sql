-- The run's own date in the pipeline history holds exactly the run's forecast: the same
-- deals with the same expected amounts (a re-run replaced its rows, never added to them).
with snapshot as (
    select opportunity_id, expected_amount, forecast_category
    from {{ ref('fct_pipeline_snapshots') }}
    where as_of_date = {{ as_of_date() }}
),
forecast as (
    select opportunity_id, expected_amount, forecast_category
    from {{ ref('fct_pipeline_forecast') }}
),
only_in_snapshot as (
    select * from snapshot
    except
    select * from forecast
),
only_in_forecast as (
    select * from forecast
    except
    select * from snapshot
)
select 'only in the snapshot' as side, * from only_in_snapshot
union all
select 'only in the forecast' as side, * from only_in_forecast
