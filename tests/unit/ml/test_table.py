"""crm train / crm score on a table a user brings, through the real command line."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import run_crm
from tests.unit.ml.conftest import planted_frame


@pytest.fixture
def users_table(tmp_path):
    x, y = planted_frame(8_000, seed=11)
    table = pd.DataFrame(
        {
            "Cust No": x.customer_id,
            "Age": x.age,
            "Job Title": x.job,
            "Monthly Spend": x.spend,
            "Signed Up": pd.Timestamp("2024-01-01"),
            "Member": pd.Series(y).map({1: "Yes", 0: "no"}),
        }
    )
    path = tmp_path / "customers.csv"
    table.to_csv(path, index=False)
    return path, table


def test_train_and_score_any_table(users_table, tmp_path):
    path, table = users_table
    proc = run_crm(
        "train",
        "--input",
        str(path),
        "--target",
        "Member",
        "--id",
        "Cust No",
        "--out",
        str(tmp_path / "model"),
        home=tmp_path / "home",
    )
    assert "Job Title = sales" in proc.stdout
    assert (tmp_path / "model" / "rules.md").exists()
    scored = tmp_path / "scores.parquet"
    run_crm(
        "score",
        "--model",
        str(tmp_path / "model"),
        "--input",
        str(path),
        "--out",
        str(scored),
        home=tmp_path / "home",
    )
    out = pd.read_parquet(scored)
    assert list(out.columns) == ["Cust No", "score", "band", "decile", "rule_id", "rule"]
    assert len(out) == len(table) and out["Cust No"].is_unique
    assert out.score.between(0, 1).all() and out.rule_id.str.match(r"R\d\d").all()
    sales = out.merge(table, on="Cust No")
    top = sales[sales.rule_id == "R01"]
    assert (top["Job Title"] == "sales").all()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["Member"]), "no target column 'Member'"),
        (lambda t: t.assign(Member="no"), "has one class only"),
        (lambda t: t.assign(Member="maybe"), "must hold 1/0, true/false or yes/no"),
        (lambda t: pd.concat([t, t.head(3)]), "'Cust No' has 3 duplicate value"),
    ],
)
def test_bad_tables_get_a_clear_error(users_table, tmp_path, change, message):
    _, table = users_table
    bad = tmp_path / "bad.csv"
    change(table).to_csv(bad, index=False)
    proc = run_crm(
        "train",
        "--input",
        str(bad),
        "--target",
        "Member",
        "--id",
        "Cust No",
        "--out",
        str(tmp_path / "m"),
        home=tmp_path / "home",
        check=False,
    )
    assert proc.returncode == 3
    assert message in proc.stderr


def test_an_unreadable_file_gets_a_clear_error(tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 not really")
    proc = run_crm(
        "train",
        "--input",
        str(bad),
        "--target",
        "y",
        "--out",
        str(tmp_path / "m"),
        home=tmp_path / "home",
        check=False,
    )
    assert proc.returncode == 3 and "cannot be read" in proc.stderr
