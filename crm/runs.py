"""A pipeline run's identity, its as-of date, and the summary it leaves behind.

The as-of date is the last day whose events a run may use. A scheduled run at 02:00 UTC
processes the day that just ended; a run started by hand or by a backfill passes it
explicitly. Each run writes one row to `audit.pipeline_runs` and a JSON summary to
`reports/runs/`, which `crm run` prints.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from crm.errors import BadInputError
from crm.files import atomic_write, safe_name
from crm.settings import Settings, get_settings
from crm.tables import ensure_audit

#: The earliest as-of date a run accepts (every DAG's start_date follows it).
EARLIEST_AS_OF = date(1990, 1, 1)


def latest_as_of() -> date:
    """The latest as-of date a run accepts: today where the day is furthest ahead (UTC+14),
    so a user anywhere may run for their own today, and never a day nobody has reached."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()


def check_as_of(as_of: date) -> date:
    """`as_of` if a run may use it; a future date would become the date BI and audiences
    stick to, and a date before EARLIEST_AS_OF lies before every DAG's start."""
    if as_of > latest_as_of():
        raise BadInputError(
            f"as-of date {as_of} is in the future (today is {datetime.now(UTC).date()} UTC); "
            "a run uses the events up to the end of its as-of date"
        )
    if as_of < EARLIEST_AS_OF:
        raise BadInputError(
            f"as-of date {as_of} is before {EARLIEST_AS_OF}, the earliest a run takes"
        )
    return as_of


def as_of_from_events(params: dict | None, triggering_asset_events=None) -> date:
    """The as-of date of an asset-triggered run: the `as_of` param if given, else the one the
    upstream run put in its asset event's extra (asset-triggered runs have no logical date)."""
    explicit = (params or {}).get("as_of")
    if explicit:
        return check_as_of(parse_date(explicit))
    dates = [
        event.extra.get("as_of")
        for events in (triggering_asset_events or {}).values()
        for event in events
        if getattr(event, "extra", None) and event.extra.get("as_of")
    ]
    if not dates:
        raise BadInputError("no as_of param and no as-of date in the triggering asset events")
    return check_as_of(parse_date(max(dates)))


def check_as_of_reaches_data(as_of: date, settings: Settings | None = None) -> None:
    """Refuse an as-of date more than CRM_AS_OF_MAX_LAG_DAYS after the newest transaction
    or interaction in raw: a mistyped date (2027 for 2026) would otherwise publish a BI
    snapshot where every customer has lapsed, and later correct runs would count as
    backfills. A CRM with no events yet has nothing to compare with."""
    from crm.warehouse import session, table_exists

    settings = settings or get_settings()
    newest = None
    with session(read_only=True, settings=settings) as con:
        for table, column in (("transactions", "occurred_at"), ("interactions", "occurred_at")):
            if table_exists(con, "raw", table):
                value = con.execute(f"SELECT max({column}) FROM raw.{table}").fetchone()[0]
                newest = max(filter(None, (newest, value)), default=None)
    if newest is None:
        return
    lag = (as_of - newest.date()).days
    if lag > settings.as_of_max_lag_days:
        raise BadInputError(
            f"as-of date {as_of} is {lag} days after the newest transaction or interaction "
            f"({newest.date()}); more than CRM_AS_OF_MAX_LAG_DAYS={settings.as_of_max_lag_days}. "
            "A mistyped date? Run with --force (DAG param force) if it is meant"
        )


def write_report(settings: Settings, name: str, doc: dict) -> Path:
    """A JSON report in CRM_HOME/reports (last_training.json, last_scoring.json, ...)."""
    settings.reports.mkdir(parents=True, exist_ok=True)
    path = settings.reports / f"{safe_name(name)}.json"
    atomic_write(path, json.dumps(doc, indent=2, default=str) + "\n")
    return path


def parse_date(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise BadInputError(f"not a date (expected YYYY-MM-DD): {value!r}") from exc


def resolve_as_of(params: dict | None, logical_date: datetime | None) -> date:
    """The `as_of` param if given, else the day before the run's logical date."""
    explicit = (params or {}).get("as_of")
    if explicit:
        return check_as_of(parse_date(explicit))
    if logical_date is None:
        raise BadInputError(
            "this run has no logical date and no as_of param; pass as_of (YYYY-MM-DD)"
        )
    return check_as_of((logical_date.astimezone(UTC) - timedelta(days=1)).date())


def backfill_dates(first: date, last: date, reverse: bool = False, every: str = "1") -> list[date]:
    """The as-of dates from `first` to `last`, oldest first (newest first if `reverse`):
    every day, every N days (`every` = "N", from `first`), or the last day of each month
    (`every` = "month-end"; history marts and forecast accuracy read month ends)."""
    if last < first:
        raise BadInputError(f"--to {last} is before --from {first}")
    if every == "month-end":
        dates = [
            d
            for d in (first + timedelta(days=i) for i in range((last - first).days + 1))
            if (d + timedelta(days=1)).day == 1
        ]
    else:
        try:
            step = int(every)
        except ValueError:
            step = 0
        if step < 1:
            raise BadInputError(f"--every {every!r}: a number of days (1 or more) or month-end")
        dates = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]
    if not dates:
        raise BadInputError(f"no month ends from {first} to {last}")
    return dates[::-1] if reverse else dates


def parse_timestamp(value: str | datetime) -> datetime:
    """A timestamp a run recorded (ISO text from an XCom, or already a datetime), UTC."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def start_run(run_id: str, as_of: date, settings: Settings | None = None) -> dict:
    from crm.warehouse import session

    settings = settings or get_settings()
    settings.ensure_dirs()
    started = _now()
    with session(settings=settings) as con:
        ensure_audit(con)
        con.execute("DELETE FROM audit.pipeline_runs WHERE run_id = ?", [run_id])
        # one pipeline run at a time writes a home (the writer pool, max_active_runs, the
        # home lock): a run still `running` now died without recording it (SIGKILL, a lost
        # machine); its batches are checked again by this run's landing checkpoint
        con.execute(
            "UPDATE audit.pipeline_runs SET status = 'interrupted', finished_at = ? "
            "WHERE status = 'running'",
            [started],
        )
        con.execute(
            "INSERT INTO audit.pipeline_runs VALUES (?, ?, 'running', ?, NULL, NULL)",
            [run_id, as_of, started],
        )
    return {"run_id": run_id, "as_of": as_of.isoformat(), "started_at": started.isoformat()}


def _combined_dbt(stages: dict) -> dict:
    """Both dbt phases of a run as one result."""
    phases = [stages[k] for k in ("dbt", "dbt_customer_360") if stages.get(k)]
    combined = {
        "models": 0,
        "tests_passed": 0,
        "tests_warned": 0,
        "tests_failed": 0,
        "seconds": 0.0,
        "warnings": [],
        "model_seconds": {},
    }
    for phase in phases:
        for key in ("models", "tests_passed", "tests_warned", "tests_failed", "seconds"):
            combined[key] += phase.get(key, 0)
        combined["warnings"] += phase.get("warnings", [])
        combined["model_seconds"].update(phase.get("model_seconds", {}))
    combined["seconds"] = round(combined["seconds"], 3)
    return combined


def finish_run(
    run: dict,
    ingest_results: list[dict],
    stages: dict,
    settings: Settings | None = None,
) -> dict:
    """Record the run as successful and write its summary; returns the summary.

    `stages` holds what the later tasks returned: validation (the landing checkpoint), dbt
    (phase 1), clv, dbt_customer_360, bi_snapshot, postgres_marts, docs. Missing ones are
    left out.
    """
    from crm.warehouse import session

    settings = settings or get_settings()
    finished = _now()
    started = datetime.fromisoformat(run["started_at"])
    dbt = _combined_dbt(stages)
    timings = {"ingest": round(sum(r["seconds"] for r in ingest_results), 3), "dbt": dbt["seconds"]}
    for key in ("validation", "clv", "bi_snapshot", "docs"):
        if stages.get(key):
            timings[key] = stages[key].get("seconds", 0.0)
    postgres = stages.get("postgres_marts") or {}
    if "seconds" in postgres:  # built (not skipped: CRM_POSTGRES_MARTS unset)
        timings["postgres_marts"] = postgres["seconds"]
    summary = {
        "run_id": run["run_id"],
        "as_of": run["as_of"],
        "status": "success",
        "started_at": run["started_at"],
        "finished_at": finished.isoformat(),
        "seconds": round((finished - started).total_seconds(), 3),
        "stages": timings,
        "ingest": {r["entity"]: r for r in ingest_results},
        "dbt": dbt,
        "clv": stages.get("clv"),
        "bi_snapshot": stages.get("bi_snapshot"),
        "postgres_marts": stages.get("postgres_marts"),
        "validation": stages.get("validation"),
        "outputs": {
            "warehouse": str(settings.warehouse_path),
            "bi": (stages.get("bi_snapshot") or {}).get("path"),
            "dbt docs": (stages.get("docs") or {}).get("path"),
            "validation": (stages.get("validation") or {}).get("page"),
            "landing": str(settings.landing),
            "reports": str(settings.reports),
        },
    }
    summary["outputs"] = {k: v for k, v in summary["outputs"].items() if v}
    with session(settings=settings) as con:
        from crm.warehouse import marts_fingerprint

        # what the run produced, to compare two runs of a date (reruns, backfills)
        summary["marts"] = marts_fingerprint(con)
        ensure_audit(con)
        con.execute(
            "UPDATE audit.pipeline_runs SET status = 'success', finished_at = ?, summary = ? "
            "WHERE run_id = ?",
            [finished, json.dumps(summary), run["run_id"]],
        )
    runs_dir = settings.reports / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2) + "\n"
    path = runs_dir / f"{safe_name(run['run_id'])}.json"
    path.write_text(text)
    atomic_write(settings.reports / "last_run.json", text)
    summary["summary_file"] = str(path)
    return summary


def fail_run(run_id: str | None, settings: Settings | None = None) -> None:
    """Mark a run failed (called by the DAG's failure task; the task logs say why)."""
    from crm.warehouse import session

    if not run_id:
        return
    with session(settings=settings or get_settings()) as con:
        ensure_audit(con)
        con.execute(
            "UPDATE audit.pipeline_runs SET status = 'failed', finished_at = ? "
            "WHERE run_id = ? AND status = 'running'",
            [_now(), run_id],
        )
