"""
## crm_pipeline

The nightly batch for one as-of date: load every landing entity into the warehouse `raw`
schema (one task per entity, parents before children so references can be checked), build
the dbt models, and record the run in `audit.pipeline_runs` and `reports/runs/`.

**As-of date**: the `as_of` param when given (`crm run --as-of`, backfills); otherwise the
day before the run's logical date, so the 02:00 UTC run on 2025-03-02 processes
2025-03-01. Every model only sees events up to the end of that day.

**Re-runs** are safe: a landing file already loaded is skipped (set `reload` to reload
every file, which replaces its batch), and dbt rebuilds the models for the date.

Bad input (an unreadable file, a missing required column, a broken mapping file) fails the
task at once with the file and the problem; a locked warehouse is retried.
"""

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from crm.assets import WAREHOUSE_MODELS, WAREHOUSE_RAW
from ingest.contract import ENTITIES, LOAD_ORDER


@dag(
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "ingest", "dbt"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "pool": "warehouse_writer",
    },
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day of data to use (YYYY-MM-DD); default: the day before the run.",
        ),
        "reload": Param(False, type="boolean", description="Reload files already loaded."),
    },
)
def crm_pipeline():
    @task
    def start_run(params=None, logical_date=None, run_id=None) -> dict:
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.runs import resolve_as_of, start_run

        with fail_fast_on_bad_input():
            return start_run(run_id=run_id, as_of=resolve_as_of(params, logical_date))

    def ingest_task(entity: str):
        outlets = [WAREHOUSE_RAW] if entity == LOAD_ORDER[-1] else []

        @task(task_id=f"ingest_{entity}", outlets=outlets)
        def ingest(run: dict, params=None) -> dict:
            from crm.airflow_support import fail_fast_on_bad_input
            from ingest.load import load_entity

            with fail_fast_on_bad_input():
                reload = bool((params or {}).get("reload"))
                return load_entity(entity, run_id=run["run_id"], reload=reload).as_dict()

        return ingest

    @task(outlets=[WAREHOUSE_MODELS])
    def build_models(run: dict, outlet_events=None) -> dict:
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.dbt import build
        from crm.runs import parse_date

        with fail_fast_on_bad_input():
            result = build(as_of=parse_date(run["as_of"])).as_dict()
        outlet_events[WAREHOUSE_MODELS].extra = {"as_of": run["as_of"], "run_id": run["run_id"]}
        return result

    @task
    def finish_run(run: dict, built: dict, loads: list[dict]) -> dict:
        from crm.runs import finish_run

        return finish_run(run, loads, built)

    run = start_run()
    loads = {}
    for entity in LOAD_ORDER:
        loads[entity] = ingest_task(entity)(run)
        for parent in ENTITIES[entity].parents:
            loads[parent] >> loads[entity]
    built = build_models(run)
    for load in loads.values():
        load >> built
    finish_run(run, built, [loads[e] for e in LOAD_ORDER])


crm_pipeline()
