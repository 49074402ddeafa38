"""Runs as of dates deep in the past: a CRM whose history lies in 1997-1998 runs through the
real DAGs as of a date inside it, every task runs (Airflow marks a run before
a DAG's start_date successful without running anything, which `crm run` must never take
for a success), and the marts hold that date's figures. A date far after the newest data
is refused; `--republish` rolls BI back to an earlier date. Also what a script sees:
`--json` on stdout, and the exit code of a date a run cannot take."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import run_crm
from tests.conftest import warehouse_query as query

pytestmark = pytest.mark.integration


def landing(home: Path, entity: str) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(p) for p in sorted((home / "landing" / entity).glob("*.parquet"))]
    )


def until(frame: pd.DataFrame, column: str, as_of: date) -> pd.DataFrame:
    """The rows whose `column` falls on or before `as_of` (UTC)."""
    stamps = pd.to_datetime(frame[column], utc=True)
    return frame[stamps < pd.Timestamp(as_of + timedelta(days=1), tz="UTC")]


def published(home: Path) -> str:
    """The as-of date of the BI snapshot."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse" / "bi" / "crm_marts.duckdb"), read_only=True)
    try:
        return str(con.execute("SELECT max(as_of_date) FROM marts._snapshot").fetchone()[0])
    finally:
        con.close()


def every_task_ran(summary: dict) -> None:
    tasks = summary["airflow"]["tasks"]
    assert summary["airflow"]["state"] == "success"
    for task_id, task in tasks.items():
        expected = "skipped" if task_id == "record_failure" else "success"
        assert task["state"] == expected, (task_id, task)


def assert_figures_of(home: Path, as_of: date) -> None:
    """The marts count and sum exactly the landing rows up to the as-of date."""
    customers = until(landing(home, "customers"), "created_at", as_of)
    transactions = until(landing(home, "transactions"), "occurred_at", as_of)
    assert len(transactions) < len(landing(home, "transactions"))  # later rows exist
    [(n_customers,)] = query(home, "SELECT count(*) FROM marts.dim_customers")
    assert n_customers == len(customers) > 0
    [(n, total, last)] = query(
        home, "SELECT count(*), sum(amount), max(occurred_at) FROM marts.fct_transactions"
    )
    assert n == len(transactions)
    assert float(total) == pytest.approx(float(transactions["amount"].sum()), abs=0.01)
    assert as_of - timedelta(days=31) < last.date() <= as_of


def test_a_run_as_of_1998_runs_every_task_of_every_dag_for_that_date(tmp_path):
    """One CRM whose history ends in 1998: the whole run (pipeline, training, scoring,
    activation) for a date inside it, then a date far after its data, then BI rolled back
    to an earlier date (one home for the three: each run through Airflow costs a minute)."""
    home, as_of = tmp_path / "home", date(1998, 5, 31)
    run_crm("generate", "--customers", "800", "--end", "1998-07-01", "--quiet", home=home)
    proc = run_crm("run", "--as-of", as_of.isoformat(), "--json", home=home)
    result = json.loads(proc.stdout)  # stdout holds exactly one JSON document
    assert result["as_of"] == as_of.isoformat()
    assert result["pipeline"]["status"] == "success"
    for stage in ("pipeline", "training", "scoring", "activation"):
        every_task_ran(result[stage])
        assert result[stage]["as_of"] == as_of.isoformat()
    assert "Run manual__" in proc.stderr  # the text for people went to stderr
    assert_figures_of(home, as_of)
    assert result["training"]["offers"]  # every offer got a decision
    scored = [o for o, v in result["scoring"]["offers"].items() if v["status"] == "scored"]
    if scored:
        [(scored_as_of,)] = query(home, "SELECT DISTINCT as_of_date FROM ml.customer_scores")
        assert scored_as_of == as_of
        for offer in scored:
            manifest = json.loads(
                (home / "audiences" / offer / "latest" / "manifest.json").read_text()
            )
            assert manifest["as_of_date"] == as_of.isoformat()

    # a date far after the newest data is refused (a mistyped year would freeze BI on it)
    proc = run_crm("run", "--as-of", "1998-12-31", "--no-ml", home=home, check=False)
    assert proc.returncode == 3
    assert "as-of date 1998-12-31 is 184 days after the newest transaction or interaction " \
        "(1998-06-30)" in proc.stderr  # fmt: skip
    assert published(home) == as_of.isoformat()

    # an earlier date replaces BI's snapshot only when republished (a backfill does not:
    # test_pipeline's rerun): the way back after a later date was published by mistake
    run_crm("run", "--as-of", "1998-02-28", "--no-ml", "--republish", home=home)
    assert published(home) == "1998-02-28"


def test_a_date_outside_the_runnable_range_is_a_usage_error(tmp_path):
    home = tmp_path / "home"
    future = (date.today() + timedelta(days=30)).isoformat()
    proc = run_crm("run", "--as-of", future, home=home, check=False)
    assert proc.returncode == 2
    assert f"as-of date {future} is in the future" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    proc = run_crm("backfill", "--from", "1989-12-01", "--to", "1990-01-02", "--json", home=home,
                   check=False)  # fmt: skip
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {
        "error": "as-of date 1989-12-01 is before 1990-01-01, the earliest a run takes",
        "exit_code": 2,
    }
