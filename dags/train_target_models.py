"""
## train_target_models

Weekly (Mondays 04:00 UTC) and on demand: for each offer, train a challenger decision tree
on the time-based split (features on as_of - 180 days, labels in the next 90; holdout one
window later), gate it against the champion on the same holdout, and record the version,
its rules, metrics and gains in the registry (CRM_HOME/models) and the warehouse (ml.*).

**As-of date**: the `as_of` param when given, otherwise the day before the logical date.
Guards (too few positives, one class, constant features, a failed pipeline run for the
date, a tree no better than chance) stop an offer's training and leave its champion.
"""

from airflow.sdk import dag, task

from crm.airflow_support import (
    BUILD,
    START_DATE,
    TRAIN,
    WRITER_DEFAULT_ARGS,
    as_of_param,
    schedule,
)
from crm.assets import TARGET_MODELS


@dag(
    schedule=schedule("training"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "ml"],
    default_args=WRITER_DEFAULT_ARGS,
    params={"as_of": as_of_param("Date to train as of (YYYY-MM-DD).")},
)
def train_target_models():
    @task(execution_timeout=BUILD)
    def build_training_features(params=None, logical_date=None) -> dict:
        """The feature and label marts for the training and holdout dates."""
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.dbt import ML_MARTS, build
        from crm.runs import resolve_as_of
        from ml.config import load_config
        from ml.features import split_dates

        with fail_fast_on_bad_input():
            as_of = resolve_as_of(params, logical_date)
            dates = [d.isoformat() for d in split_dates(as_of, load_config().horizon_days)]
            result = build(as_of, select=ML_MARTS, extra_vars={"feature_dates": dates})
        return {"as_of": as_of.isoformat(), "feature_dates": dates, "dbt": result.as_dict()}

    @task(outlets=[TARGET_MODELS], execution_timeout=TRAIN)
    def train_and_gate(built: dict, run_id=None, outlet_events=None) -> dict:
        from crm.runs import parse_date, write_report
        from crm.settings import get_settings
        from ml.train_offers import train_offers

        summary = train_offers(parse_date(built["as_of"]), run_id=run_id)
        write_report(get_settings(), "last_training", summary)
        outlet_events[TARGET_MODELS].extra = {"as_of": built["as_of"], "run_id": run_id}
        return summary

    train_and_gate(build_training_features())


train_target_models()
