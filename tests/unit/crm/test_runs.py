from datetime import UTC, date, datetime

import pytest

from crm.cli.format import format_summary
from crm.errors import BadInputError
from crm.files import safe_name
from crm.runs import parse_date, resolve_as_of


def test_an_explicit_as_of_wins():
    assert resolve_as_of({"as_of": "2025-03-01"}, datetime(2030, 1, 1, tzinfo=UTC)) == date(
        2025, 3, 1
    )


def test_a_scheduled_run_processes_the_day_before_its_logical_date():
    assert resolve_as_of({}, datetime(2025, 3, 2, 2, 0, tzinfo=UTC)) == date(2025, 3, 1)


def test_no_logical_date_and_no_as_of_is_an_error():
    with pytest.raises(BadInputError, match="pass as_of"):
        resolve_as_of({"as_of": None}, None)


def test_bad_dates_are_reported():
    with pytest.raises(BadInputError, match="YYYY-MM-DD"):
        parse_date("01/03/2025")


def test_run_ids_become_safe_file_names():
    assert safe_name("manual__2025-03-01T02:00:00+00:00") == "manual__2025-03-01T02_00_00_00_00"
    assert safe_name("../../etc/passwd") == "etc_passwd"


def test_the_summary_lists_each_entity_and_the_totals():
    entity = {
        "rows_read": 10,
        "rows_loaded": 8,
        "rows_quarantined": 2,
        "files_loaded": 1,
        "files_skipped": 0,
        "raw_rows_total": 8,
        "quarantined_by_reason": {"bad_type": 2},
        "ignored_columns": ["x"],
    }
    text = format_summary(
        {
            "run_id": "r",
            "as_of": "2025-03-01",
            "status": "success",
            "seconds": 3.2,
            "ingest": {"customers": entity, "transactions": entity},
            "dbt": {"models": 10, "tests_passed": 60, "tests_warned": 0, "tests_failed": 0},
            "clv": {"status": "skipped", "reason": "3 repeat buyers"},
            "stages": {"ingest": 1.0, "dbt": 2.0},
            "outputs": {"warehouse": "/w"},
        }
    )
    assert "customers" in text and "transactions" in text
    assert [line.split() for line in text.splitlines() if line.startswith("total")] == [
        ["total", "20", "16", "4"]
    ]
    assert "bad_type 4" in text and "customers: x" in text
    assert "dbt: 10 models built, 60 tests passed" in text
    assert "CLV: not fitted (3 repeat buyers)" in text


def test_the_docs_page_is_remade_only_when_the_project_changes(tmp_path, monkeypatch):
    from crm.dbt import generate_docs, project_fingerprint
    from crm.settings import get_settings

    monkeypatch.setenv("CRM_HOME", str(tmp_path))
    settings = get_settings()
    fingerprint = project_fingerprint(settings)
    assert fingerprint == project_fingerprint(settings)
    assert fingerprint != project_fingerprint(settings.replace(dbt_target="postgres"))
    page = settings.reports / "dbt_docs" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html>docs</html>")
    (page.parent / ".fingerprint").write_text(fingerprint)
    result = generate_docs(date(2026, 6, 1), settings)
    assert "skipped" in result and page.read_text() == "<html>docs</html>"


def test_a_backfill_covers_every_date_in_the_order_asked():
    from crm.runs import backfill_dates

    first, last = date(2026, 2, 27), date(2026, 3, 2)
    forward = backfill_dates(first, last)
    assert forward == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]
    assert backfill_dates(first, last, reverse=True) == forward[::-1]
    assert backfill_dates(first, first) == [first]
    with pytest.raises(BadInputError, match="before"):
        backfill_dates(last, first)
    # history by the week, or by month end (what forecast accuracy reads)
    assert backfill_dates(date(2026, 1, 1), date(2026, 1, 20), every="7") == [
        date(2026, 1, 1),
        date(2026, 1, 8),
        date(2026, 1, 15),
    ]
    assert backfill_dates(date(2026, 1, 15), date(2026, 4, 30), every="month-end") == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    for every, message in (("0", "--every"), ("weekly", "--every"), ("month-end", "no month")):
        with pytest.raises(BadInputError, match=message):
            backfill_dates(date(2026, 1, 2), date(2026, 1, 20), every=every)


def test_a_run_left_running_by_a_killed_process_is_marked_interrupted(crm_home):
    from crm.runs import start_run
    from tests.conftest import warehouse_query

    start_run("killed", date(2026, 1, 1))  # ... never finished nor failed
    start_run("next", date(2026, 1, 2))
    assert warehouse_query(
        crm_home, "SELECT run_id, status FROM audit.pipeline_runs ORDER BY started_at"
    ) == [("killed", "interrupted"), ("next", "running")]
