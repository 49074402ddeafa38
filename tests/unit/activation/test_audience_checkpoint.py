"""The audience checkpoint gates publication: a release that breaks a critical expectation
stops the run before any file or table is written, and every result is kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

import activation.publish as publish
from activation.config import ContactPolicy, load_config
from activation.publish import check_audiences, publish_audiences
from crm.warehouse import session
from expectations.audiences import holdout_bounds
from expectations.outcome import CriticalExpectationFailed

from .conftest import AS_OF, add_scored

CUSTOMERS = [f"C{i:03d}" for i in range(1, 201)]


def _results(home, where="true"):
    with session(read_only=True, settings=home) as con:
        return con.execute(
            "SELECT suite, description, severity, success FROM audit.validation_results "
            f"WHERE {where} ORDER BY suite, description"
        ).fetchall()


def test_a_good_release_passes_and_its_results_are_kept(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS)
        add_scored(con, "OFFER-B", CUSTOMERS[:50])
    # both lists whole: a customer may get both offers (the policy is tested elsewhere)
    config = replace(load_config(), contact_policy=ContactPolicy(max_offers=2))
    summary = check_audiences(AS_OF, run_id="r1", settings=home, config=config)
    assert summary["critical_failed"] == [] and summary["suites"] == 2
    assert summary["expectations"] == summary["passed"] == 16
    published = publish_audiences(AS_OF, run_id="r1", settings=home, config=config)
    assert published["validation"]["passed"] == 16
    assert list((home.reports / "validation").glob("*_r1_audiences.html"))
    # the check ran twice for the run (the DAG's gate, then publish): one set of results
    assert len(_results(home)) == 16


@pytest.mark.parametrize(
    "tamper, expected",
    [
        (lambda rows: rows.assign(score=rows.score * 3), "score between 0 and 1"),
        (lambda rows: rows.assign(group="holdout"), "holdout share between"),
        (lambda rows: rows.assign(group="control"), "group target or holdout"),
        (
            lambda rows: rows.assign(customer_id=rows.customer_id.where(rows.index > 0, "C999")),
            "no customer who opted out or already adopted the offer",
        ),
    ],
)
def test_a_bad_release_stops_publication_before_anything_is_written(
    home, monkeypatch, tamper, expected
):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS)
        con.execute(
            "INSERT INTO marts.dim_customers VALUES ('C999', 'x***@example.com', '***', true)"
        )
    real = publish.build_release

    def broken(*args, **kwargs):  # a bug in release building, for the gate to catch
        release = real(*args, **kwargs)
        release.rows = tamper(release.rows)
        return release

    monkeypatch.setattr(publish, "build_release", broken)
    with pytest.raises(CriticalExpectationFailed) as failure:
        publish_audiences(AS_OF, run_id="bad", settings=home)
    assert expected in str(failure.value)
    assert not (home.audiences / "OFFER-A").exists()
    with session(read_only=True, settings=home) as con:
        assert con.execute("SELECT count(*) FROM activation.campaign_audiences").fetchall() == [
            (0,)
        ]
    failed = _results(home, "NOT success")
    assert failed and all(s == "critical" for _, _, s, _ in failed)
    assert any(expected in d for _, d, _, _ in failed)


def test_the_holdout_bounds_follow_sticky_groups():
    # a fresh list of 1,000 at 10%: 10% within three standard errors and the slack
    low, high = holdout_bounds(0.10, 1000)
    assert 0.05 < low < 0.10 < high < 0.15
    # 600 customers keep their group, 300 of them holdouts; 400 new drawn at 10%
    low, high = holdout_bounds(0.10, 1000, known=600, known_holdouts=300)
    assert low < 0.34 < high and high - low < 0.1


def test_an_empty_release_has_nothing_to_check(home):
    with session(settings=home) as con:
        add_scored(con, "OFFER-A", CUSTOMERS[:5])
        con.execute("DELETE FROM ml.offer_audiences")
    config = replace(load_config(), destinations=())
    summary = publish_audiences(AS_OF, run_id="r1", settings=home, config=config)
    assert summary["validation"]["expectations"] == 0
