"""
## score_target_customers

Daily, after each successful pipeline run (the `crm_warehouse_models` asset), after each
training run (`crm_target_models`: a new champion scores at once) or on demand: score
every eligible customer (not opted out, not an adopter of the offer yet) with each offer's
champion tree into `ml.customer_scores`, and hand the chosen audience to activation in
`ml.offer_audiences` (the cut is in ml/config.yml: top n, threshold or positive expected
value).

**As-of date**: the `as_of` param when given, otherwise the one the upstream run carried
in its asset event (asset-triggered runs have no logical date); the later one if both fired.
"""

from airflow.sdk import dag, task

from crm.airflow_support import BUILD, LOAD, START_DATE, WRITER_DEFAULT_ARGS, as_of_param
from crm.assets import AUDIENCES, TARGET_MODELS, WAREHOUSE_MODELS


@dag(
    schedule=(WAREHOUSE_MODELS | TARGET_MODELS),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "ml"],
    default_args=WRITER_DEFAULT_ARGS,
    params={"as_of": as_of_param("Date to score as of (YYYY-MM-DD).")},
)
def score_target_customers():
    @task(execution_timeout=BUILD)
    def build_scoring_features(params=None, triggering_asset_events=None) -> dict:
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.dbt import ML_MARTS, build
        from crm.runs import as_of_from_events

        with fail_fast_on_bad_input():
            as_of = as_of_from_events(params, triggering_asset_events)
            result = build(
                as_of, select=ML_MARTS, extra_vars={"feature_dates": [as_of.isoformat()]}
            )
        return {"as_of": as_of.isoformat(), "dbt": result.as_dict()}

    @task(outlets=[AUDIENCES], execution_timeout=LOAD)
    def score(built: dict, run_id=None, outlet_events=None) -> dict:
        from crm.runs import parse_date, write_report
        from crm.settings import get_settings
        from ml.score import score_offers

        summary = score_offers(parse_date(built["as_of"]), run_id=run_id)
        write_report(get_settings(), "last_scoring", summary)
        outlet_events[AUDIENCES].extra = {"as_of": built["as_of"], "run_id": run_id}
        return summary

    score(build_scoring_features())


score_target_customers()
