"""The landing checkpoint on small files loaded through the real loader into a real DuckDB."""

from __future__ import annotations

from datetime import date

import pytest

from expectations.landing import validate_landing
from expectations.outcome import CriticalExpectationFailed
from ingest.contract import ENTITIES
from ingest.load import load_entity
from tests.conftest import warehouse_query as query
from tests.unit.ingest.test_load import CUSTOMERS, write

AS_OF = date(2024, 3, 31)
HEADER = "transaction_id,customer_id,occurred_at,amount,status\n"


def transactions(n: int, bad: int = 0, day: str = "2024-03-30") -> str:
    rows = [f"T{i},C1,{day} 10:00:00,{10 + i % 7}.50,completed" for i in range(n)]
    rows += [f"X{i},C9,{day} 10:00:00,1.00,completed" for i in range(bad)]  # unknown customer
    return HEADER + "\n".join(rows) + "\n"


def run(run_id: str, name: str, text: str):
    write_home = run.home
    write(write_home, "transactions", name, text)
    load_entity("customers", run_id=run_id)
    load_entity("transactions", run_id=run_id)
    return validate_landing(run_id, AS_OF, entities=("customers", "transactions"))


@pytest.fixture
def home(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    run.home = crm_home
    return crm_home


def results(home, where: str = "true") -> list[tuple]:
    return query(
        home,
        "SELECT suite, expectation, severity, success, observed FROM audit.validation_results "
        f"WHERE {where} ORDER BY suite, expectation",
    )


def test_a_clean_batch_passes_every_expectation_and_is_recorded(home):
    summary = run("r1", "t1.csv", transactions(20))
    assert summary["critical_failed"] == []
    # the one warning: the newest customer record is from 2024-02-01, 59 days before
    assert len(summary["warnings"]) == 1 and "observed 59" in summary["warnings"][0]
    rows = results(home, "suite = 'landing.transactions'")
    kinds = {r[1] for r in rows}
    assert {
        "expect_column_values_to_not_be_null",
        "expect_compound_columns_to_be_unique",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_be_between",
    } <= kinds
    assert all(r[3] for r in rows)
    # the freshness of transactions: newest on 2024-03-30, one day before the as-of date
    fresh = results(home, "suite = 'landing.transactions.profile' AND observed = '1'")
    assert fresh and fresh[0][3]


def test_a_batch_mostly_quarantined_is_rejected_and_stops_the_run(home):
    with pytest.raises(CriticalExpectationFailed) as failure:
        run("r1", "t1.csv", transactions(3, bad=7))
    message = str(failure.value)
    assert "landing.transactions.profile" in message and "quarantined" in message
    assert "0.7" in message
    # the batch is out of raw and quarantine and marked rejected with the reason
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(0,)]
    assert query(home, "SELECT count(*) FROM audit.quarantine WHERE entity = 'transactions'") == [
        (0,)
    ]
    status, note = query(
        home, "SELECT status, note FROM audit.load_batches WHERE entity = 'transactions'"
    )[0]
    assert status == "rejected" and "quarantined" in note
    stored = results(home, "NOT success AND severity = 'critical'")
    assert stored and stored[0][0] == "landing.transactions.profile"


def test_a_rejected_file_is_checked_again_and_a_fixed_one_loads(home):
    with pytest.raises(CriticalExpectationFailed):
        run("r1", "t1.csv", transactions(3, bad=7))
    # the same file again: loaded again (not skipped as known) and rejected again
    with pytest.raises(CriticalExpectationFailed):
        run("r2", "t1.csv", transactions(3, bad=7))
    # the fixed file at the same path loads
    summary = run("r3", "t1.csv", transactions(10))
    assert summary["critical_failed"] == []
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(10,)]


def test_a_few_quarantined_rows_are_a_warning_not_a_stop(home):
    summary = run("r1", "t1.csv", transactions(90, bad=10))
    assert summary["critical_failed"] == []
    assert any("unknown parent" in w for w in summary["warnings"])
    assert any("quarantined" in w for w in summary["warnings"])
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(90,)]


def test_volume_far_from_recent_batches_warns(home):
    for i in range(3):
        run(f"r{i}", f"t{i}.csv", transactions(20).replace("T", f"B{i}T"))
    summary = run("r9", "t9.csv", transactions(100).replace("T", "BigT"))
    volume = [w for w in summary["warnings"] if "median" in w]
    assert volume and "observed 5" in volume[0]


def test_stale_data_warns_on_freshness(home):
    summary = run("r1", "t1.csv", transactions(10, day="2024-03-01"))
    stale = [w for w in summary["warnings"] if "newest occurred_at" in w]
    assert stale and "observed 30" in stale[0]


def test_a_row_that_slipped_past_ingestion_fails_the_row_suite_with_examples(home):
    """The row suite is the second line: a bad row in raw (a loader bug, a hand edit) is
    caught with the offending rows as examples."""
    import duckdb

    run("r1", "t1.csv", transactions(5))
    con = duckdb.connect(str(home / "warehouse" / "crm.duckdb"))
    con.execute(
        "UPDATE raw.transactions SET amount = -5, status = 'Pending' WHERE transaction_id = 'T2'"
    )
    con.execute(
        "UPDATE audit.load_batches SET run_id = 'r2', status = NULL WHERE entity = 'transactions'"
    )
    con.close()
    with pytest.raises(CriticalExpectationFailed) as failure:
        validate_landing("r2", AS_OF, entities=("transactions",))
    message = str(failure.value)
    assert "amount between 0 and 10,000,000" in message
    assert "status one of completed, refunded, cancelled" in message
    assert '"transaction_id": "T2"' in message and '"status": "Pending"' in message


def test_every_entity_has_a_row_suite_with_its_key():
    from expectations.landing import row_expectations

    for entity in ENTITIES.values():
        found = row_expectations(entity)
        described = " ".join(e.description for e in found)
        for key in entity.key:
            assert f"{key} always present" in described, entity.name


def test_a_retried_task_fails_again_after_rejecting(home):
    with pytest.raises(CriticalExpectationFailed):
        run("r1", "t1.csv", transactions(3, bad=7))
    # Airflow retries the task, or someone clears it: the same run must not pass now
    with pytest.raises(CriticalExpectationFailed, match="rejected this run's batches"):
        validate_landing("r1", AS_OF, entities=("customers", "transactions"))


def test_rejecting_a_parent_rejects_the_same_runs_children(home):
    write(
        home,
        "customers",
        "bad.csv",
        "customer_id,created_at\n" + "".join(f",2024-03-0{i % 9 + 1}\n" for i in range(10)),
    )
    write(home, "transactions", "t1.csv", transactions(5))
    load_entity("customers", run_id="r1")
    load_entity("transactions", run_id="r1")
    with pytest.raises(CriticalExpectationFailed, match="landing.customers.profile"):
        validate_landing("r1", AS_OF, entities=("customers", "transactions"))
    notes = dict(
        query(home, "SELECT entity, note FROM audit.load_batches WHERE status = 'rejected'")
    )
    assert set(notes) == {"customers", "transactions"}
    assert "parent" in notes["transactions"] and "customers" in notes["transactions"]
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(0,)]


def test_many_contact_values_that_are_not_addresses_warn_without_showing_them(home):
    """Ingestion sets such values to NULL (the row loads); a batch where many were is an
    export that changed its format, which the checkpoint says."""
    rows = "".join(f"C{i},2024-03-30,person{i}-at-example\n" for i in range(3, 30))
    write(home, "customers", "c2.csv", "customer_id,created_at,email\n" + rows)
    summary = run("r1", "t1.csv", transactions(5))
    nulled = [w for w in summary["warnings"] if "contact field set to NULL" in w]
    assert nulled and "person" not in nulled[0]
    assert query(home, "SELECT count(*), count(email) FROM raw.customers") == [(29, 0)]


def test_a_sudden_jump_of_the_amounts_warns(home):
    """A wrong number format multiplies every amount while each row passes its checks: the
    median against the recent batches' medians says so."""
    for i in range(3):
        run(f"r{i}", f"t{i}.csv", transactions(20).replace("T", f"B{i}T"))
    same = run("r8", "t8.csv", transactions(20).replace("T", "SameT"))
    assert not [w for w in same["warnings"] if "median amount" in w]
    jumped = transactions(20).replace("T", "JumpT").replace(".50,", "50,")  # 12.50 -> 1250
    summary = run("r9", "t9.csv", jumped)
    warning = [w for w in summary["warnings"] if "median amount" in w]
    assert len(warning) == 1 and "observed 100" in warning[0]


def test_a_batch_whose_run_died_before_the_checkpoint_is_checked_by_the_next_run(home):
    """A run killed between loading and checking left its batch in raw; the next run skips
    the file as loaded, so its checkpoint must check that batch, whichever run loaded it."""
    load_entity("customers", run_id="dead")
    write(home, "transactions", "t1.csv", transactions(3, bad=7))
    load_entity("transactions", run_id="dead")  # ... and the run died here
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(3,)]
    next_run = load_entity("transactions", run_id="next")
    assert next_run.files_skipped == 1  # nothing new for the next run
    with pytest.raises(CriticalExpectationFailed):
        validate_landing("next", AS_OF, entities=("customers", "transactions"))
    assert query(home, "SELECT count(*) FROM raw.transactions") == [(0,)]
    assert query(home, "SELECT status FROM audit.load_batches WHERE entity = 'transactions'") == [
        ("rejected",)
    ]


def test_a_batch_that_passed_is_not_checked_again(home):
    run("r1", "t1.csv", transactions(20))
    assert query(home, "SELECT DISTINCT status FROM audit.load_batches WHERE rows_read > 0") == [
        ("validated",)
    ]
    again = validate_landing("r2", AS_OF, entities=("customers", "transactions"))
    assert again["suites"] == 2  # the two figures suites only: no batch to check
