"""
## crm_pipeline

The nightly batch for one as-of date: load every landing entity into the warehouse `raw`
schema (one task per entity, parents before children so references can be checked): new
landing files, then, when the CRM database is configured (`CRM_SOURCE_URL` or the
connection `crm_source`), the rows changed there since the entity's watermark; run the
landing checkpoint (Great Expectations suites per entity: a critical failure rejects the
batch and stops the run before dbt); build the dbt models in two phases around the
customer-lifetime-value fit (phase 2 is the customer 360, which carries the CLV values);
publish the marts as a read-only snapshot for BI, and (CRM_POSTGRES_MARTS=1) build them on
the PostgreSQL warehouse too; regenerate the dbt docs page; record the run in
`audit.pipeline_runs` and `reports/runs/`.

**As-of date**: the `as_of` param when given (`crm run --as-of`, backfills); otherwise the
day before the run's logical date, so the 02:00 UTC run on 2025-03-02 processes
2025-03-01. Every model only sees events up to the end of that day.

**Re-runs** are safe: a landing file already loaded is skipped (set `reload` to reload
every file, which replaces its batch), and dbt rebuilds the models for the date.

Bad input (an unreadable file, a missing required column, a broken mapping file) fails the
task at once with the file and the problem; a locked warehouse is retried.
"""

from airflow.sdk import Param, dag, task

from crm.airflow_support import (
    BUILD,
    CHECK,
    LOAD,
    QUICK,
    START_DATE,
    WRITER_DEFAULT_ARGS,
    as_of_param,
    schedule,
)
from crm.assets import BI_SNAPSHOT, WAREHOUSE_MODELS, WAREHOUSE_RAW
from ingest.contract import ENTITIES, LOAD_ORDER


@dag(
    schedule=schedule("pipeline"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "ingest", "dbt"],
    default_args=WRITER_DEFAULT_ARGS,
    params={
        "as_of": as_of_param(
            "Last day of data to use (YYYY-MM-DD); default: the day before the run."
        ),
        "reload": Param(False, type="boolean", description="Reload files already loaded."),
        "full_refresh": Param(
            False, type="boolean", description="Rebuild incremental models from scratch."
        ),
        "force": Param(
            False,
            type="boolean",
            description="Run although the as-of date lies far after the newest data.",
        ),
        "republish": Param(
            False,
            type="boolean",
            description="Publish this date's BI snapshot even if a later date was published.",
        ),
    },
)
def crm_pipeline():
    @task(execution_timeout=QUICK)
    def start_run(params=None, logical_date=None, run_id=None) -> dict:
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.runs import resolve_as_of, start_run

        with fail_fast_on_bad_input():
            return start_run(run_id=run_id, as_of=resolve_as_of(params, logical_date))

    def ingest_task(entity: str):
        @task(task_id=f"ingest_{entity}", execution_timeout=LOAD)
        def ingest(run: dict, params=None) -> dict:
            from crm.airflow_support import connection_url, fail_fast_on_bad_input
            from crm.runs import parse_timestamp
            from crm.settings import get_settings
            from ingest.load import load_entity

            # the CRM database: CRM_SOURCE_URL wins; else the Airflow connection crm_source
            source_url = get_settings().source_url or connection_url("crm_source")
            with fail_fast_on_bad_input():
                reload = bool((params or {}).get("reload"))
                return load_entity(
                    entity,
                    run_id=run["run_id"],
                    reload=reload,
                    source_url=source_url,
                    # every entity of the run reads the CRM database up to the same instant
                    source_until=(
                        parse_timestamp(run["started_at"]) if run.get("started_at") else None
                    ),
                ).as_dict()

        return ingest

    @task(execution_timeout=CHECK)
    def validate_landing(run: dict, loads: list[dict], params=None) -> dict:
        """The landing checkpoint (GX): a critical failure rejects the batch and stops the
        run here, before dbt builds anything on it. First, an as-of date far after the
        newest data (a mistyped date) stops the run, unless the `force` param says so."""
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.runs import check_as_of_reaches_data, parse_date
        from expectations.landing import validate_landing

        with fail_fast_on_bad_input():
            if not (params or {}).get("force"):
                check_as_of_reaches_data(parse_date(run["as_of"]))
            return validate_landing(run["run_id"], parse_date(run["as_of"]))

    @task(outlets=[WAREHOUSE_RAW], execution_timeout=QUICK)
    def raw_loaded(run: dict, loads: list[dict], outlet_events=None) -> list[dict]:
        """Every entity of the run is in raw: say so, with the run's as-of date."""
        outlet_events[WAREHOUSE_RAW].extra = {"as_of": run["as_of"], "run_id": run["run_id"]}
        return loads

    @task(execution_timeout=BUILD)
    def build_models(run: dict, params=None) -> dict:
        """dbt phase 1: staging, intermediate and the marts that do not need the CLV fit."""
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.dbt import CUSTOMER_360, ML_MARTS, build
        from crm.runs import parse_date

        full = bool((params or {}).get("full_refresh"))
        with fail_fast_on_bad_input():
            return build(
                as_of=parse_date(run["as_of"]),
                exclude=f"{CUSTOMER_360} {ML_MARTS}",
                full_refresh=full,
            ).as_dict()

    @task(execution_timeout=LOAD)
    def fit_customer_lifetime_values(run: dict) -> dict:
        from crm.runs import parse_date
        from ml.clv import update_customer_lifetime_values

        return update_customer_lifetime_values(parse_date(run["as_of"]))

    @task(outlets=[WAREHOUSE_MODELS], execution_timeout=BUILD)
    def build_customer_360(run: dict, params=None, outlet_events=None) -> dict:
        """dbt phase 2: the customer 360 and what depends on it, with the CLV values."""
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.dbt import CUSTOMER_360, build
        from crm.runs import parse_date

        full = bool((params or {}).get("full_refresh"))
        with fail_fast_on_bad_input():
            result = build(
                as_of=parse_date(run["as_of"]), select=CUSTOMER_360, full_refresh=full
            ).as_dict()
        outlet_events[WAREHOUSE_MODELS].extra = {"as_of": run["as_of"], "run_id": run["run_id"]}
        return result

    @task(outlets=[BI_SNAPSHOT], execution_timeout=CHECK)
    def publish_bi_snapshot(run: dict, params=None, outlet_events=None) -> dict:
        from crm.bi_snapshot import publish_snapshot

        republish = bool((params or {}).get("republish"))
        result = publish_snapshot(run["run_id"], run["as_of"], republish=republish)
        outlet_events[BI_SNAPSHOT].extra = {"as_of": run["as_of"], "run_id": run["run_id"]}
        return result

    @task(execution_timeout=BUILD)
    def publish_postgres_marts(run: dict) -> dict:
        """With CRM_POSTGRES_MARTS=1: the same marts on the PostgreSQL warehouse (CRM_PG_*)
        for BI, with its read-only role (crm/pg_warehouse.py); otherwise nothing."""
        from crm.settings import get_settings

        if not get_settings().postgres_marts:
            return {"skipped": "CRM_POSTGRES_MARTS is not set"}
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.pg_warehouse import build_marts
        from crm.runs import parse_date

        with fail_fast_on_bad_input():
            result = build_marts(parse_date(run["as_of"]))
        return {**result, "seconds": round(result["sync_seconds"] + result["dbt_seconds"], 3)}

    @task(execution_timeout=CHECK)
    def generate_docs(run: dict) -> dict:
        from crm.dbt import generate_docs
        from crm.runs import parse_date

        return generate_docs(parse_date(run["as_of"]))

    @task(execution_timeout=QUICK)
    def finish_run(run: dict, loads: list[dict], stages: dict) -> dict:
        from crm.runs import finish_run

        return finish_run(run, loads, stages)

    @task(trigger_rule="one_failed", execution_timeout=QUICK)
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
    landing = validate_landing(run, [loads[e] for e in LOAD_ORDER])
    raw = raw_loaded(run, [loads[e] for e in LOAD_ORDER])
    landing >> raw
    built = build_models(run)
    clv = fit_customer_lifetime_values(run)
    built_360 = build_customer_360(run)
    snapshot = publish_bi_snapshot(run)
    postgres = publish_postgres_marts(run)
    docs = generate_docs(run)
    raw >> built >> clv >> built_360 >> snapshot >> docs
    built_360 >> postgres
    stages = {
        "validation": landing,
        "dbt": built,
        "clv": clv,
        "dbt_customer_360": built_360,
        "bi_snapshot": snapshot,
        "postgres_marts": postgres,
        "docs": docs,
    }
    finished = finish_run(run, raw, stages)
    every_task = [
        run, *loads.values(), landing, raw, built, clv, built_360, snapshot, postgres, docs
    ]  # fmt: skip
    [*every_task, finished] >> record_failure()


crm_pipeline()
