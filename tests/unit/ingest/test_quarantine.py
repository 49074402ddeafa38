"""`crm quarantine`: what was held back and why, exported for fixing, resubmitted and loaded
by the next load, on small files through a real DuckDB."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.cli import main
from crm.errors import BadInputError, CrmError
from crm.warehouse import session
from ingest import quarantine
from ingest.load import load_entity
from tests.conftest import warehouse_query as query

from .test_load import load_transactions, write

BAD = (
    "T1,C1,2024-03-01 10:00:00,12.50,completed\n"
    "T2,C9,2024-03-01 11:00:00,5.00,completed\n"  # unknown customer
    "T3,C2,2024-03-02 10:00:00,-4.00,completed\n"  # negative amount
    "T4,C2,2024-03-02 12:00:00,abc,completed\n"  # not a number
)


def test_list_show_export_resubmit_and_the_next_load_takes_the_fixed_rows(crm_home, capsys):
    load_transactions(crm_home, BAD)
    assert main(["quarantine"]) == 0
    listed = capsys.readouterr().out
    assert "unknown_reference" in listed and "out_of_range" in listed and "bad_type" in listed
    assert "what to do: deliver the parent record" in listed

    assert main(["quarantine", "show", "transactions", "--reason", "bad_type"]) == 0
    shown = capsys.readouterr().out
    assert "t.csv:4" in shown and "abc" in shown and "T3" not in shown

    fixes = crm_home / "fixes.csv"
    assert main(["quarantine", "export", "transactions", "--out", str(fixes)]) == 0
    frame = pd.read_csv(fixes, dtype=str)
    assert sorted(frame.transaction_id) == ["T2", "T3", "T4"]
    assert {"quarantine_file", "quarantine_row", "quarantine_reason"} <= set(frame.columns)

    # a person fixes two of the three; the unknown customer stays unknown
    frame.loc[frame.transaction_id == "T3", "amount"] = "4.00"
    frame.loc[frame.transaction_id == "T4", "amount"] = "7.25"
    frame.to_csv(fixes, index=False)
    assert main(["quarantine", "resubmit", "transactions", str(fixes)]) == 0
    assert "3 transactions rows placed" in capsys.readouterr().out

    result = load_entity("transactions")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    loaded = dict(query(crm_home, "SELECT transaction_id, amount FROM raw.transactions"))
    assert float(loaded["T3"]) == 4.0 and float(loaded["T4"]) == 7.25
    assert query(crm_home, "SELECT count(*) FROM audit.quarantine_resubmissions") == [(1,)]
    with session(read_only=True) as con:
        still = quarantine.rows(con, "transactions", "unknown_reference", limit=None)
    assert sorted(still.source_file.str.contains("resubmitted_")) == [False, True]


def test_every_reason_code_the_loader_writes_is_explained():
    from ingest.checks import REASON_CODES

    assert set(REASON_CODES) == set(quarantine.REASONS)


def test_bad_requests_get_a_clear_error(crm_home, tmp_path):
    with pytest.raises(BadInputError, match="unknown entity"):
        quarantine.resubmit("payments", tmp_path / "x.csv")
    with pytest.raises(BadInputError, match="cannot be read"):
        quarantine.resubmit("transactions", tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("transaction_id,amount\n")
    with pytest.raises(BadInputError, match="no rows"):
        quarantine.resubmit("transactions", empty)


def test_lines_that_could_not_be_parsed_are_exported_as_their_text(crm_home, capsys):
    """Only unparseable lines held back: the export once wrote 0 rows and lost them."""
    write(
        crm_home,
        "customers",
        "c.csv",
        b"customer_id,city\nC1,Oslo\nC2,\xff\xfeBergen\nC3,Oslo,extra\n",
    )
    load_entity("customers")
    out = crm_home / "fixes.csv"
    assert main(["quarantine", "export", "customers", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    lines_file = crm_home / "fixes.unparseable.txt"
    assert "2 customers line(s) that could not be split into columns written" in said
    assert str(lines_file) in said and not out.exists()
    text = lines_file.read_text(encoding="utf-8", errors="replace").splitlines()
    assert len(text) == 2 and "Bergen" in text[0] and text[1].endswith(",extra")


def test_a_resubmission_into_a_landing_folder_that_cannot_be_written_fails_clearly(
    crm_home, tmp_path
):
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("customer_id,city\nC1,Oslo\n")
    (crm_home / "landing" / "customers").write_text("not a folder")
    with pytest.raises(CrmError, match="cannot put the file into the landing folder .*customers"):
        quarantine.resubmit("customers", fixed)
