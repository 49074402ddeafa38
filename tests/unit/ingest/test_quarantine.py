"""`crm quarantine`: what was held back and why, exported for fixing, resubmitted and loaded
by the next load, on small files through a real DuckDB."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.cli import main
from crm.errors import BadInputError
from crm.warehouse import session
from ingest import quarantine
from ingest.load import load_entity
from tests.conftest import warehouse_query as query

from .test_load import load_transactions

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
    from ingest.load import REASON_CODES

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
