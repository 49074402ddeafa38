"""
## activate_audiences

After each scoring run (the `crm_audiences` asset) or on demand: turn every offer's scored
list into an audience release (suppression with counts per reason, a stable holdout group,
a diff against the previous release), write it as an immutable folder under
`CRM_HOME/audiences/<offer>/<as-of date>/` and move `latest` to it, then publish it to the
warehouse (`activation.campaign_audiences`, `activation.campaign_audience_latest`) and, when a CRM
database is configured (`CRM_DB_URL` or the connection `crm_db`), to its campaign audience
table in one transaction. Finally the run report (`reports/last_run.html`).

**As-of date**: the `as_of` param when given, otherwise the one the scoring run carried in
its asset event.

**Gate**: `validate_audiences` runs the audience checkpoint (one row per customer, scores
in 0..1, no opted-out or adopted customer, holdout share in bounds); a critical failure
stops the run before anything is published (results: `audit.validation_results`).
"""

from airflow.sdk import Param, dag, task

from crm.airflow_support import CHECK, LOAD, START_DATE, WRITER_DEFAULT_ARGS, as_of_param
from crm.assets import AUDIENCES, PUBLISHED_AUDIENCES


@dag(
    schedule=[AUDIENCES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["crm", "activation"],
    default_args=WRITER_DEFAULT_ARGS,
    params={
        "as_of": as_of_param("Date whose scored lists to publish (YYYY-MM-DD)."),
        "republish": Param(
            False,
            type="boolean",
            description="Move each offer's `latest` to this date even if a later one exists.",
        ),
    },
)
def activate_audiences():
    @task(execution_timeout=CHECK)
    def validate_audiences(params=None, triggering_asset_events=None, run_id=None) -> dict:
        """The audience checkpoint (GX) on every release of the date, before any is
        written; publish checks again, so nothing unchecked goes out."""
        from activation.publish import check_audiences
        from crm.airflow_support import fail_fast_on_bad_input
        from crm.runs import as_of_from_events

        with fail_fast_on_bad_input():
            as_of = as_of_from_events(params, triggering_asset_events)
            return check_audiences(as_of, run_id=run_id)

    @task(outlets=[PUBLISHED_AUDIENCES], execution_timeout=LOAD)
    def publish(params=None, triggering_asset_events=None, run_id=None, outlet_events=None):
        from activation.publish import publish_audiences
        from crm.airflow_support import connection_url, fail_fast_on_bad_input
        from crm.runs import as_of_from_events
        from crm.settings import get_settings

        settings = get_settings()
        if not settings.db_url:  # CRM_DB_URL wins; else the Airflow connection crm_db
            settings = settings.replace(db_url=connection_url("crm_db"))
        with fail_fast_on_bad_input():
            as_of = as_of_from_events(params, triggering_asset_events)
            republish = bool((params or {}).get("republish"))
            summary = publish_audiences(
                as_of, run_id=run_id, settings=settings, republish=republish
            )
        outlet_events[PUBLISHED_AUDIENCES].extra = {"as_of": as_of.isoformat(), "run_id": run_id}
        return summary

    @task(execution_timeout=CHECK)
    def write_run_report(published: dict, run_id=None) -> dict:
        from activation.report import write_report
        from crm.runs import parse_date
        from crm.runs import write_report as write_json
        from crm.settings import get_settings

        as_of = parse_date(published["as_of"])
        path = write_report(as_of, run_id, published["offers"], published.get("validation"))
        published["report"] = str(path)
        write_json(get_settings(), "last_activation", published)
        return published

    published = publish()
    validate_audiences() >> published
    write_run_report(published)


activate_audiences()
