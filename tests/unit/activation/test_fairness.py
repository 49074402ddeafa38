"""Protected attributes: never a feature; each released list's selection rate by group."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from activation.fairness import fairness_report, selection_rates
from ml.config import CONFIG_PATH, load_config


def test_protected_attributes_are_never_features(tmp_path):
    config = load_config()
    assert config.protected_attributes == ("gender",)
    assert "gender" not in config.numeric and "gender" not in config.categorical
    assert "occupation" in config.categorical
    # a user's own table (crm train FILE) keeps the protection
    own = config.with_features({"age": "age"}, {"gender": "gender", "job": "job"})
    assert own.categorical == {"job": "job"}
    changed_file = tmp_path / "config.yml"
    changed_file.write_text(
        CONFIG_PATH.read_text().replace(
            "protected_attributes: [gender]", "protected_attributes: [age]"
        )
    )
    changed = load_config(changed_file)
    assert "gender" in changed.categorical and "age" not in changed.numeric


def test_a_group_selected_below_four_fifths_of_the_overall_rate_is_flagged():
    scored = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(100)],
            "gender": ["female"] * 50 + ["male"] * 40 + [None] * 10,
        }
    )
    selected = {f"C{i}" for i in range(0, 20)} | {f"C{i}" for i in range(50, 58)}
    rates = {g["group"]: g for g in selection_rates(scored, selected, "gender")}
    assert [g for g in rates] == ["female", "male", "(missing)"]
    overall = 28 / 100
    assert rates["female"]["selection_rate"] == pytest.approx(0.4)
    assert rates["female"]["ratio_to_overall"] == pytest.approx(0.4 / overall, abs=1e-4)
    assert rates["male"]["ratio_to_overall"] == pytest.approx(0.2 / overall, abs=1e-4)
    assert (rates["female"]["flagged"], rates["male"]["flagged"]) == (False, True)
    assert rates["(missing)"] == {
        "group": "(missing)",
        "scored": 10,
        "selected": 0,
        "selection_rate": 0.0,
        "ratio_to_overall": 0.0,
        "flagged": True,
    }


def test_nothing_selected_gives_rates_without_ratios():
    scored = pd.DataFrame({"customer_id": ["A", "B"], "gender": ["x", "y"]})
    assert [g["ratio_to_overall"] for g in selection_rates(scored, set(), "gender")] == [None, None]
    assert not any(g["flagged"] for g in selection_rates(scored, set(), "gender"))


def test_the_report_reads_the_scored_customers_and_skips_attributes_nobody_has():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA ml; CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE ml.customer_scores AS SELECT * FROM (VALUES "
        "('A', 'O1', DATE '2026-06-01'), ('B', 'O1', DATE '2026-06-01'), "
        "('C', 'O2', DATE '2026-06-01'), ('A', 'O1', DATE '2026-05-01')) "
        "t(customer_id, offer_id, as_of_date)"
    )
    con.execute(
        "CREATE TABLE marts.dim_customers AS SELECT * FROM (VALUES "
        "('A', 'female', NULL), ('B', 'male', NULL), ('C', 'male', NULL)) "
        "t(customer_id, gender, marital_status)"
    )
    found = fairness_report(
        con, "O1", date(2026, 6, 1), {"A"}, ("gender", "marital_status", "religion")
    )
    assert list(found) == ["gender"]
    assert {g["group"]: g["selected"] for g in found["gender"]} == {"female": 1, "male": 0}


def test_a_numeric_attribute_is_reported_in_bands_of_ten():
    from activation.fairness import _grouped

    scored = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "age": [31.0, 39.9, 40.0, None]})
    rates = selection_rates(_grouped(scored), {"A"}, "age")
    assert {g["group"]: g["scored"] for g in rates} == {"30-39": 2, "40-49": 1, "(missing)": 1}
