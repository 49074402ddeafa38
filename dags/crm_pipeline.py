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
        @task(task_id=f"ingest_{entity}")
        def ingest(run: dict, params=None) -> dict:
            from crm.airflow_support import fail_fast_on_bad_input
            from ingest.load import load_entity

            with fail_fast_on_bad_input():
                reload = bool((params or {}).get("reload"))
                return load_entity(entity, run_id=run["run_id"], reload=reload).as_dict()

        return ingest

    @task(outlets=[WAREHOUSE_RAW])
    def raw_loaded(run: dict, loads: list[dict], outlet_events=None) -> list[dict]:
        """Every entity of the run is in raw: say so, with the run's as-of date."""
        outlet_events[WAREHOUSE_RAW].extra = {"as_of": run["as_of"], "run_id": run["run_id"]}
        return loads

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

    @task(trigger_rule="one_failed")
    def record_failure(run_id=None) -> None:
        """Runs only when a task failed: mark the run failed in audit.pipeline_runs, and fail
        itself so the DAG run ends failed (it is the last task, so its state decides)."""
        from airflow.sdk.exceptions import AirflowFailException

        from crm.runs import fail_run

        fail_run(run_id)
        raise AirflowFailException("an upstream task failed; see its log")

    run = start_run()
    loads = {}
    for entity in LOAD_ORDER:
        loads[entity] = ingest_task(entity)(run)
        for parent in ENTITIES[entity].parents:
            loads[parent] >> loads[entity]
    raw = raw_loaded(run, [loads[e] for e in LOAD_ORDER])
    built = build_models(run)
    raw >> built
    finished = finish_run(run, built, raw)
    [run, *loads.values(), raw, built, finished] >> record_failure()


crm_pipeline()
