"""The contract checks and the batch load, on small files through a real DuckDB."""

from __future__ import annotations

import os
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crm.errors import BadInputError
from ingest.load import load_entity
from tests.conftest import warehouse_query as query

CUSTOMERS = (
    "customer_id,created_at,birth_date,monthly_income,occupation\n"
    "C1,2024-01-01,1990-05-01,3000,sales\n"
    "C2,2024-02-01,1985-01-01,4000,clerk\n"
)


def write(home: Path, entity: str, name: str, text: str | bytes) -> Path:
    folder = home / "landing" / entity
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def reasons(home: Path, entity: str) -> dict[str, int]:
    return dict(
        query(
            home,
            f"SELECT reason_code, count(*) FROM audit.quarantine "
            f"WHERE entity = '{entity}' GROUP BY 1",
        )
    )


def load_transactions(home: Path, rows: str) -> object:
    write(home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,occurred_at,amount,status\n" + rows,
    )
    return load_entity("transactions")


def test_valid_rows_load_with_batch_metadata(crm_home):
    result = load_transactions(crm_home, "T1,C1,2024-03-01 10:00:00,12.50,completed\n")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (1, 1, 0)
    row = query(
        crm_home, "SELECT transaction_id, amount, _source_file, _row_number FROM raw.transactions"
    )
    assert row == [("T1", pytest.approx(12.5), "transactions/t.csv", 1)]


def test_missing_required_value_is_quarantined(crm_home):
    result = load_transactions(crm_home, "T1,C1,2024-03-01,,completed\nT2,C1,2024-03-01,5,\n")
    assert result.rows_loaded == 1
    assert reasons(crm_home, "transactions") == {"missing_required": 1}
    assert query(crm_home, "SELECT reason FROM audit.quarantine") == [("amount is missing",)]


def test_unparseable_values_are_quarantined_with_the_value(crm_home):
    result = load_transactions(
        crm_home,
        "T1,C1,2024-03-01,12;50,completed\nT2,C1,31/02/2024,5,completed\n"
        "T3,C1,2024-03-01,5,completed\n",
    )
    assert result.rows_loaded == 1
    assert reasons(crm_home, "transactions") == {"bad_type": 2}
    messages = sorted(r[0] for r in query(crm_home, "SELECT reason FROM audit.quarantine"))
    assert messages == [
        "amount is not a valid money: 12;50",
        "occurred_at is not a valid timestamp: 31/02/2024",
    ]


def test_enums_compare_case_insensitively_and_reject_unknown_values(crm_home):
    result = load_transactions(
        crm_home, "T1,C1,2024-03-01,5, Completed \nT2,C1,2024-03-01,5,pending\n"
    )
    assert result.rows_loaded == 1
    assert reasons(crm_home, "transactions") == {"bad_value": 1}


def test_negative_and_absurd_amounts_are_out_of_range(crm_home):
    result = load_transactions(
        crm_home,
        "T1,C1,2024-03-01,-4,completed\nT2,C1,2024-03-01,20000000,completed\n"
        "T3,C1,2024-03-01,0,completed\n",
    )
    assert result.rows_loaded == 1
    assert reasons(crm_home, "transactions") == {"out_of_range": 2}


def test_dates_after_the_load_are_future_dates(crm_home):
    result = load_transactions(
        crm_home,
        "T1,C1,2099-03-01,5,completed\nT2,C1,1850-01-01,5,completed\n"
        "T3,C1,2024-03-01,5,completed\n",
    )
    assert result.rows_loaded == 1
    assert reasons(crm_home, "transactions") == {"future_date": 1, "out_of_range": 1}


def test_timestamps_with_an_offset_are_stored_in_utc(crm_home):
    load_transactions(crm_home, "T1,C1,2024-03-01T10:00:00+02:00,5,completed\n")
    assert (
        str(query(crm_home, "SELECT occurred_at FROM raw.transactions")[0][0])
        == "2024-03-01 08:00:00"
    )


def test_duplicate_key_in_one_batch_keeps_the_first_copy(crm_home):
    result = load_transactions(
        crm_home, "T1,C1,2024-03-01,5,completed\nT1,C1,2024-03-01,5,completed\n"
    )
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert query(crm_home, "SELECT row_number, reason FROM audit.quarantine") == [
        (2, "same transaction_id and updated_at as row 1")
    ]


def test_a_later_version_of_a_key_is_not_a_duplicate(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,occurred_at,amount,status,updated_at\n"
        "T1,C1,2024-03-01,5,completed,2024-03-01\nT1,C1,2024-03-01,5,refunded,2024-03-09\n",
    )
    result = load_entity("transactions")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 0)


def test_unknown_references_are_quarantined(crm_home):
    result = load_transactions(
        crm_home, "T1,C9,2024-03-01,5,completed\nT2,C1,2024-03-01,5,completed\n"
    )
    assert result.rows_loaded == 1
    assert query(crm_home, "SELECT reason_code, reason FROM audit.quarantine") == [
        ("unknown_reference", "unknown customer_id C9")
    ]


def test_references_to_an_entity_never_delivered_are_not_checked(crm_home):
    # products were never delivered, so product_id cannot be checked and must not reject rows
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,product_id,occurred_at,amount\nT1,C1,P404,2024-03-01,5\n",
    )
    assert load_entity("transactions").rows_loaded == 1


def test_loading_the_same_file_again_loads_nothing(crm_home):
    load_transactions(crm_home, "T1,C1,2024-03-01,5,completed\n")
    again = load_entity("transactions")
    assert (again.files_skipped, again.rows_loaded) == (1, 0)
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(1,)]


def test_reload_replaces_the_batch_instead_of_duplicating_it(crm_home):
    load_transactions(crm_home, "T1,C1,2024-03-01,5,completed\nT2,C1,2024-03-01,-1,completed\n")
    again = load_entity("transactions", reload=True)
    assert (again.files_loaded, again.rows_loaded, again.rows_quarantined) == (1, 1, 1)
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(1,)]
    assert query(crm_home, "SELECT count(*) FROM audit.quarantine") == [(1,)]
    assert query(
        crm_home, "SELECT count(*) FROM audit.load_batches WHERE entity = 'transactions'"
    ) == [(1,)]


def test_a_changed_file_at_the_same_path_is_a_new_batch(crm_home):
    path = write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    path.write_text(CUSTOMERS + "C3,2024-03-01,1970-01-01,2000,nurse\n")
    result = load_entity("customers")
    assert result.files_loaded == 1 and result.rows_loaded == 3
    assert query(crm_home, "SELECT count(DISTINCT _batch_id), count(*) FROM raw.customers") == [
        (2, 5)
    ]


def test_a_missing_required_column_fails_naming_the_file_and_column(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,occurred_at\nT1,C1,2024-03-01\n",
    )
    with pytest.raises(BadInputError, match=r"t\.csv: required column\(s\) amount missing"):
        load_entity("transactions")
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(0,)]


def test_an_empty_file_fails_clearly(crm_home):
    write(crm_home, "customers", "c.csv", "")
    with pytest.raises(BadInputError, match=r"c\.csv: the file is empty"):
        load_entity("customers")


def test_a_header_only_file_is_zero_rows_not_an_error(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    write(crm_home, "customers", "d.csv", "customer_id,created_at\n")
    result = load_entity("customers")
    assert (result.files_loaded, result.rows_loaded) == (2, 2)


def test_a_corrupt_parquet_file_fails_naming_the_file(crm_home):
    write(crm_home, "customers", "c.parquet", b"PAR1 this is not parquet at all")
    with pytest.raises(BadInputError, match=r"c\.parquet: cannot be read as PARQUET"):
        load_entity("customers")


def test_a_truncated_parquet_file_fails_and_loads_nothing(crm_home, tmp_path):
    whole = tmp_path / "whole.parquet"
    pq.write_table(
        pa.table({"customer_id": [f"C{i}" for i in range(5000)], "occupation": ["x"] * 5000}),
        whole,
    )
    data = whole.read_bytes()
    write(crm_home, "customers", "cut.parquet", data[: len(data) // 2])  # a copy cut short
    with pytest.raises(BadInputError, match=r"cut\.parquet: cannot be read as PARQUET"):
        load_entity("customers")
    assert query(crm_home, "SELECT count(*) FROM audit.load_batches") == [(0,)]


def test_an_unknown_file_type_fails_naming_the_file(crm_home):
    write(crm_home, "customers", "c.xlsx", b"binary")
    with pytest.raises(BadInputError, match=r"c\.xlsx: unsupported file type"):
        load_entity("customers")


def test_lines_csv_cannot_parse_are_quarantined_not_dropped(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS + "C3,2024-01-01,1990-05-01,3000,sales,EXTRA\n")
    result = load_entity("customers")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert reasons(crm_home, "customers") == {"unparseable": 1}


def test_semicolon_delimited_csv_is_detected(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS.replace(",", ";"))
    assert load_entity("customers").rows_loaded == 2


def test_latin1_csv_loads_with_the_encoding_from_the_mapping_file(crm_home):
    text = "customer_id,city\nC1,Malm\xf6\nC2,K\xf8benhavn\n".encode("latin-1")
    write(crm_home, "customers", "c.csv", text)
    (crm_home / "landing" / "mapping.yml").write_text("customers:\n  csv:\n    encoding: latin-1\n")
    assert load_entity("customers").rows_loaded == 2
    assert sorted(r[0] for r in query(crm_home, "SELECT city FROM raw.customers")) == [
        "København",
        "Malmö",
    ]


def test_latin1_csv_without_encoding_quarantines_lines_it_cannot_decode(crm_home):
    write(
        crm_home, "customers", "c.csv", "customer_id,city\nC1,Malm\xf6\nC2,Oslo\n".encode("latin-1")
    )
    result = load_entity("customers")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert "csv.encoding" in query(crm_home, "SELECT reason FROM audit.quarantine")[0][0]


@pytest.mark.parametrize(
    ("encoding", "declared", "name"),
    [
        ("gb18030", "gb18030", "c.csv"),  # China's standard; GBK is its subset
        ("gbk", "GBK", "c.csv"),
        ("cp1252", "cp1252", "c.csv"),  # Western Europe's spreadsheet default
        ("utf-16", None, "c.tsv"),  # spreadsheet "Unicode text": a BOM says it all
        ("utf-8-sig", None, "c.csv"),  # UTF-8 with a byte-order mark (Excel's "CSV UTF-8")
    ],
)
def test_csv_in_the_encodings_crm_exports_use_loads_by_transcoding(
    crm_home, encoding, declared, name
):
    text = "customer_id,city\nC1,北京\nC2,Zürich\n"
    if encoding == "cp1252":
        text = text.replace("北京", "Malmö")
    if name.endswith(".tsv"):
        text = text.replace(",", "\t")
    write(crm_home, "customers", name, text.encode(encoding))
    if declared:
        mapping = f"customers:\n  csv:\n    encoding: {declared}\n"
        (crm_home / "landing" / "mapping.yml").write_text(mapping)
    result = load_entity("customers")
    assert (result.rows_read, result.rows_loaded) == (2, 2)
    cities = dict(query(crm_home, "SELECT customer_id, city FROM raw.customers"))
    assert cities == {"C1": text.split("\n")[1][3:], "C2": "Zürich"}


def test_an_unknown_encoding_is_refused_naming_it(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    (crm_home / "landing" / "mapping.yml").write_text("customers:\n  csv: {encoding: klingon}\n")
    with pytest.raises(BadInputError, match="unknown csv encoding 'klingon'; e.g. utf-8, gb18030"):
        load_entity("customers")


@pytest.mark.parametrize(
    ("content", "holds"),
    [
        (b"\n", "only blank lines"),
        (b"\xef\xbb\xbf", "a byte-order mark"),
        (b"\xef\xbb\xbf\r\n", "a byte-order mark and blank lines"),
    ],
)
def test_a_file_of_only_a_newline_or_a_bom_is_refused_saying_so(crm_home, content, holds):
    path = write(crm_home, "customers", "c.csv", content)
    os.utime(path, (time.time() - 3600,) * 2)  # not a copy in progress
    with pytest.raises(
        BadInputError, match=rf"c\.csv: the file holds no header and no rows \({holds}\)"
    ):
        load_entity("customers")


def test_a_field_of_3_mb_loads_and_a_longer_line_than_allowed_says_why(crm_home):
    note = "x" * 3_000_000
    write(crm_home, "customers", "c.csv", f"customer_id,city\nC1,{note}\n")
    assert load_entity("customers").rows_loaded == 1
    assert query(crm_home, "SELECT length(city) FROM raw.customers") == [(3_000_000,)]
    write(crm_home, "customers", "d.csv", f"customer_id,city\nC2,{note}\n")
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  csv: {max_line_size: 1000000}\n"
    )
    with pytest.raises(BadInputError) as failed:
        load_entity("customers")
    # DuckDB's reason is kept (it was cut to "CSV Error on Line: 1"); the line's text is not
    message = str(failed.value)
    assert "Maximum line size of 1000000 bytes exceeded" in message
    assert "set csv.max_line_size" in message and "xxxx" not in message


def test_extra_columns_are_ignored_and_reported(crm_home):
    write(crm_home, "customers", "c.csv", "customer_id,loyalty_tier\nC1,gold\n")
    result = load_entity("customers")
    assert result.rows_loaded == 1
    assert result.ignored_columns == ["loyalty_tier"]


def test_json_lines_and_parquet_load_like_csv(crm_home):
    write(
        crm_home,
        "customers",
        "c.jsonl",
        '{"customer_id": "C1", "monthly_income": 3000}\n'
        '{"customer_id": "C2", "monthly_income": "n/a"}\n',
    )
    folder = crm_home / "landing" / "products"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"product_id": ["P1"], "list_price": [9.99], "is_offer": [True]}),
        folder / "p.parquet",
    )
    customers = load_entity("customers")
    assert (customers.rows_loaded, customers.rows_quarantined) == (1, 1)
    assert load_entity("products").rows_loaded == 1
    assert query(crm_home, "SELECT is_offer FROM raw.products") == [(True,)]


def test_a_required_entity_whose_rows_were_all_quarantined_fails(crm_home):
    write(crm_home, "customers", "c.csv", "customer_id,created_at\n,2024-01-01\n")
    with pytest.raises(BadInputError, match="all rows were quarantined"):
        load_entity("customers")
    assert reasons(crm_home, "customers") == {"missing_required": 1}


def test_a_required_entity_with_no_files_fails(crm_home):
    with pytest.raises(BadInputError, match="customers is required"):
        load_entity("customers")


def test_an_optional_entity_with_no_files_leaves_an_empty_table(crm_home):
    result = load_entity("contracts")
    assert result.files_found == 0
    assert query(crm_home, "SELECT count(*) FROM raw.contracts") == [(0,)]


def test_loaded_plus_quarantined_equals_read_in_the_batch_log(crm_home):
    load_transactions(
        crm_home,
        "T1,C1,2024-03-01,5,completed\nT2,C9,2024-03-01,5,completed\n"
        "T3,C1,bad,5,completed\nT1,C1,2024-03-01,5,completed\n",
    )
    rows = query(
        crm_home,
        "SELECT rows_read, rows_loaded, rows_quarantined FROM audit.load_batches "
        "WHERE entity = 'transactions'",
    )
    assert rows == [(4, 1, 3)]


def test_a_bad_json_value_far_down_the_file_quarantines_only_that_row(crm_home):
    lines = [f'{{"customer_id": "C{i}", "monthly_income": {i}}}' for i in range(30_000)]
    lines.append('{"customer_id": "C_last", "monthly_income": "abc", "note": {"a": 1}}')
    write(crm_home, "customers", "c.jsonl", "\n".join(lines) + "\n")
    result = load_entity("customers")
    assert (result.rows_loaded, result.rows_quarantined) == (30_000, 1)
    assert result.ignored_columns == ["note"]
    assert query(crm_home, "SELECT count(*) FROM raw.customers WHERE customer_id LIKE '\"%'") == [
        (0,)
    ]


def test_json_ids_given_as_numbers_load_as_text(crm_home):
    write(crm_home, "customers", "c.jsonl", '{"customer_id": 7}\n{"customer_id": "C8"}\n')
    assert load_entity("customers").rows_loaded == 2
    assert sorted(r[0] for r in query(crm_home, "SELECT customer_id FROM raw.customers")) == [
        "7",
        "C8",
    ]


def test_a_decimal_comma_is_read_when_the_mapping_file_says_so(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id;customer_id;occurred_at;amount\nT1;C1;2024-03-01;1.234,50\n",
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "transactions:\n  csv:\n    delimiter: ';'\n    decimal_separator: ','\n"
        "    thousands_separator: '.'\n"
    )
    assert load_entity("transactions").rows_loaded == 1
    assert query(crm_home, "SELECT CAST(amount AS VARCHAR) FROM raw.transactions") == [("1234.50",)]


def test_a_fractional_quantity_is_not_rounded_into_a_whole_one(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,occurred_at,amount,quantity\n"
        "T1,C1,2024-03-01,5,2\nT2,C1,2024-03-01,5,2.5\n",
    )
    result = load_entity("transactions")
    assert (result.rows_loaded, result.quarantined_by_reason) == (1, {"bad_type": 1})


def test_an_unparseable_line_is_named_by_its_line_not_a_row_number(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS + "C3,2024-01-01,1990-05-01,3000,sales,EXTRA\n")
    load_entity("customers")
    row_number, reason = query(crm_home, "SELECT row_number, reason FROM audit.quarantine")[0]
    assert row_number is None
    assert reason.startswith("line 4 of the file could not be parsed")


def test_the_same_bytes_under_a_new_name_are_not_loaded_twice(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(crm_home, "customers", "c_copy.csv", CUSTOMERS)
    again = load_entity("customers")
    assert (again.files_skipped, again.rows_loaded) == (2, 0)
    assert query(crm_home, "SELECT count(*) FROM raw.customers") == [(2,)]
    notes = query(crm_home, "SELECT note FROM audit.load_batches WHERE source_file LIKE '%copy%'")
    assert notes == [("same content as customers/c.csv; not loaded again",)]


def test_hidden_and_underscore_folders_are_skipped(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    staging = crm_home / "landing" / "customers" / ".spark-staging"
    staging.mkdir()
    (staging / "part-0.csv").write_text("garbage")
    assert load_entity("customers").files_found == 1


def test_odd_column_names_are_quoted(crm_home):
    write(crm_home, "customers", "c.csv", "cust\"id,ci'ty\nC1,Oslo\n")
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  columns:\n    'cust\"id': customer_id\n    \"ci'ty\": city\n"
    )
    assert load_entity("customers").rows_loaded == 1


def test_timestamps_a_little_ahead_of_the_clock_are_believed(crm_home):
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    write(crm_home, "customers", "c.csv", f"customer_id,created_at\nC1,{soon}\nC2,{later}\n")
    result = load_entity("customers")
    assert (result.rows_loaded, result.quarantined_by_reason) == (1, {"future_date": 1})


def test_parquet_timestamps_with_a_time_zone_are_stored_in_utc(crm_home):
    from datetime import datetime, timedelta, timezone

    folder = crm_home / "landing" / "customers"
    folder.mkdir(parents=True)
    local = datetime(2024, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    pq.write_table(
        pa.table({"customer_id": ["C1"], "created_at": pa.array([local])}), folder / "c.parquet"
    )
    load_entity("customers")
    assert (
        str(query(crm_home, "SELECT created_at FROM raw.customers")[0][0]) == "2024-03-01 08:00:00"
    )


KILLED_LOAD = """
from ingest.load import load_entity
load_entity("customers")
load_entity("transactions")
"""


def test_a_load_killed_before_its_commit_leaves_nothing_and_the_retry_loads_once(crm_home):
    import os
    import subprocess
    import sys

    write(crm_home, "customers", "c.csv", CUSTOMERS)
    write(
        crm_home,
        "transactions",
        "t.csv",
        "transaction_id,customer_id,occurred_at,amount\n"
        + "".join(f"T{i},C{1 + i % 2},2024-03-01,{i}.50\n" for i in range(500))
        + "T9,C7,2024-03-01,1.00\n",
    )
    env = {**os.environ, "CRM_FAULT_POINT": "ingest.batches.before_commit"}
    proc = subprocess.run([sys.executable, "-c", KILLED_LOAD], env=env)
    assert proc.returncode == -9  # SIGKILL inside the first load's transaction
    assert query(crm_home, "SELECT count(*) FROM audit.load_batches") == [(0,)]
    # the retry (Airflow's, or the next run) loads each file exactly once
    load_entity("customers")
    result = load_entity("transactions")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (501, 500, 1)
    assert query(
        crm_home, "SELECT count(*), count(DISTINCT transaction_id) FROM raw.transactions"
    ) == [(500, 500)]
    assert query(crm_home, "SELECT count(*) FROM audit.quarantine") == [(1,)]
    assert query(crm_home, "SELECT count(*) FROM audit.load_batches") == [(2,)]


HUGE_LOAD = """
import resource, sys
from ingest.load import load_entity
load_entity("customers")
result = load_entity("transactions")
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print()
print(result.rows_read, result.rows_loaded, result.rows_quarantined, round(peak_mb))
"""


def test_a_file_much_bigger_than_the_memory_limit_loads_in_bounded_memory(crm_home):
    """A huge file is read in a stream and the checks spill to disk: it loads with a
    memory limit smaller than the file."""
    import os
    import subprocess
    import sys

    import duckdb

    write(crm_home, "customers", "c.csv", CUSTOMERS)
    big = crm_home / "landing" / "transactions" / "big.csv"
    big.parent.mkdir(parents=True)
    rows = 1_200_000
    duckdb.sql(
        f"COPY (SELECT 'T' || range AS transaction_id, 'C' || (1 + range % 2) AS customer_id, "
        f"TIMESTAMP '2024-01-01' + INTERVAL (range % 86400) SECOND AS occurred_at, "
        f"round(random() * 500, 2) AS amount, 'completed' AS status, "
        f"'some free text the contract does not know, to make the rows wide, a bit wider' AS note "
        f"FROM range({rows})) TO '{big}' (HEADER)"
    )
    size_mb = big.stat().st_size / 2**20
    env = {**os.environ, "CRM_DUCKDB_MEMORY_LIMIT": "100MB", "CRM_DUCKDB_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", HUGE_LOAD], env=env, capture_output=True, text=True, check=True
    )
    read, loaded, quarantined, peak_mb = map(int, proc.stdout.splitlines()[-1].split())
    assert (read, loaded, quarantined) == (rows, rows, 0)
    # DuckDB refuses to hold more than its limit, so loading a file larger than the limit
    # proves it streams. Measured: a 146 MB file, peak 206 MB for the process alone (a
    # larger file peaked at 822 MB with the whole suite running beside it).
    assert size_mb > 140 and peak_mb < 1500, (size_mb, peak_mb)


def test_missing_optional_columns_load_as_nulls_and_money_is_kept_to_the_cent(crm_home):
    # no product_id, quantity or updated_at column at all, and status left empty
    result = load_transactions(crm_home, "T1,C1,2024-03-01,12.345,\nT2,C2,2024-03-01,0.004,\n")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 0)
    assert query(
        crm_home,
        "SELECT transaction_id, amount, quantity, status, product_id FROM raw.transactions "
        "ORDER BY 1",
    ) == [("T1", Decimal("12.35"), None, None, None), ("T2", Decimal("0.00"), None, None, None)]


@pytest.mark.parametrize("name", ["transactions_2026-*.csv", "t?.csv", "t[1].csv"])
def test_a_file_name_is_read_literally_not_as_a_glob(crm_home, name):
    """DuckDB's readers expand *, ? and [...]: a file so named must read only itself."""
    header = "transaction_id,customer_id,occurred_at,amount,status\n"
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(crm_home, "transactions", "transactions_2026-01.csv", header + "T1,C1,2024-03-01,5,\n")
    write(crm_home, "transactions", "t1.csv", header + "T2,C1,2024-03-01,6,\n")
    write(crm_home, "transactions", "tx.csv", header + "T3,C1,2024-03-01,7,\n")
    write(crm_home, "transactions", name, header + "T9,C2,2024-03-02,9,\n")
    result = load_entity("transactions")
    assert (result.files_loaded, result.rows_read, result.rows_loaded) == (4, 4, 4)
    rows = query(crm_home, "SELECT _source_file, transaction_id FROM raw.transactions")
    assert (f"transactions/{name}", "T9") in rows and len(rows) == 4


def test_a_short_csv_line_is_counted_once_whatever_it_lacks(crm_home):
    """DuckDB reports a one-column line once per missing column: 10 good lines and 3 short
    ones were 31 rows read and 21 quarantined, and the batch was rejected."""
    header = "transaction_id,customer_id,occurred_at,amount,status\n"
    good = "".join(f"T{i},C1,2024-03-01,5,completed\n" for i in range(10))
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(crm_home, "transactions", "t.csv", header + good + "T97\nT98\nT99\n")
    result = load_entity("transactions")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (13, 10, 3)
    held = query(
        crm_home,
        "SELECT reason_code, reason FROM audit.quarantine WHERE entity = 'transactions' "
        "ORDER BY reason",
    )
    assert [code for code, _ in held] == ["unparseable"] * 3
    assert all(reason.startswith("line ") for _, reason in held)


def test_a_link_out_of_landing_is_refused_and_one_inside_is_followed(crm_home, tmp_path):
    """Links to files and folders alike: followed inside the landing folder, refused (the
    link and its target named, nothing of it read) when they lead outside it."""
    header = "transaction_id,customer_id,occurred_at,amount,status\n"
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    kept = crm_home / "landing" / "_archive" / "2024"
    kept.mkdir(parents=True)
    (kept / "t.csv").write_text(header + "T1,C1,2024-03-01,5,completed\n")
    transactions = crm_home / "landing" / "transactions"
    transactions.mkdir()
    (transactions / "2024").symlink_to(kept, target_is_directory=True)
    assert load_entity("transactions").rows_loaded == 1  # the linked folder is read

    secret = tmp_path / "elsewhere.csv"
    secret.write_text(header + "SECRET-LINE,C1,2024-03-01,5,completed\n")
    (transactions / "x.csv").symlink_to(secret)
    with pytest.raises(BadInputError, match="outside the landing folder") as refused:
        load_entity("transactions")
    assert str(secret) in str(refused.value) and "SECRET-LINE" not in str(refused.value)
    (transactions / "x.csv").unlink()
    (transactions / "etc").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(BadInputError, match="etc is a link to /etc, outside"):
        load_entity("transactions")
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(1,)]


def test_a_column_named_twice_or_a_json_key_given_twice_is_refused(crm_home):
    """DuckDB renames a repeated CSV column (`amount_1`) and keeps a JSON key's first
    value: either way one of two values would be taken silently."""
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home, "transactions", "t.csv",
        "transaction_id,customer_id,occurred_at,amount,Amount\nT1,C1,2024-03-01,5,500\n",
    )  # fmt: skip
    with pytest.raises(BadInputError, match="the header names column.s. amount more than once"):
        load_entity("transactions")
    (crm_home / "landing" / "transactions" / "t.csv").unlink()
    write(
        crm_home, "transactions", "t.jsonl",
        '{"transaction_id": "T1", "customer_id": "C1", "occurred_at": "2024-03-01", '
        '"amount": 5}\n'
        '{"transaction_id": "T2", "customer_id": "C1", "occurred_at": "2024-03-01", '
        '"amount": 5, "amount": 500}\n',
    )  # fmt: skip
    with pytest.raises(BadInputError, match="object 2 has the key.s. amount twice"):
        load_entity("transactions")
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(0,)]


def test_the_same_version_with_other_values_in_another_file_is_a_duplicate(crm_home):
    """Within a file a second copy of a key and updated_at is a duplicate_key; across files
    the file that sorted last used to win silently. An identical copy is no conflict."""
    header = "transaction_id,customer_id,occurred_at,amount,status,updated_at\n"
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    write(
        crm_home, "transactions", "a.csv",
        header + "T1,C1,2024-03-01,5,completed,2024-03-01 10:00:00\n"
        "T2,C1,2024-03-01,6,completed,2024-03-01 10:00:00\n",
    )  # fmt: skip
    load_entity("transactions")
    write(
        crm_home, "transactions", "b.csv",
        header + "T1,C1,2024-03-01,500,completed,2024-03-01 10:00:00\n"  # conflict
        "T2,C1,2024-03-01,6,completed,2024-03-01 10:00:00\n"  # the same copy again
        "T1,C1,2024-03-01,7,refunded,2024-03-02 09:00:00\n",  # a later version
    )  # fmt: skip
    result = load_entity("transactions")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    [(code, reason)] = query(
        crm_home, "SELECT reason_code, reason FROM audit.quarantine WHERE entity = 'transactions'"
    )
    assert code == "duplicate_key"
    assert reason == (
        "same transaction_id and updated_at as transactions/a.csv row 1, with other values: "
        "which copy holds is not clear"
    )
    assert query(crm_home, "SELECT count(*) FROM raw.transactions WHERE amount = 500") == [(0,)]


def test_a_declared_decimal_comma_never_turns_a_decimal_point_into_thousands(crm_home):
    """`decimal_separator: ","` once removed every '.': 49.98 became 4998.00 in CSV and JSON
    files alike, silently. Now the declared format is parsed as such, a value that does not
    fit it is quarantined, and a CSV mapping leaves JSON-lines files alone."""
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    (crm_home / "landing" / "mapping.yml").write_text(
        "transactions:\n  csv:\n    delimiter: ';'\n    decimal_separator: ','\n"
    )
    write(
        crm_home, "transactions", "t.csv",
        "transaction_id;customer_id;occurred_at;amount\n"
        "T1;C1;2024-03-01;49,98\n"  # the declared format
        "T2;C1;2024-03-01;49.98\n"  # not it: no thousands separator was declared
        "T3;C1;2024-03-01;1.234,50\n"  # neither
        "T4;C1;2024-03-01;1234\n",
    )  # fmt: skip
    write(
        crm_home, "transactions", "t.jsonl",
        '{"transaction_id": "T5", "customer_id": "C1", "occurred_at": "2024-03-01", '
        '"amount": "49.98"}\n',
    )  # fmt: skip
    result = load_entity("transactions")
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 3, 2)
    amounts = dict(
        query(crm_home, "SELECT transaction_id, CAST(amount AS VARCHAR) FROM raw.transactions")
    )
    assert amounts == {"T1": "49.98", "T4": "1234.00", "T5": "49.98"}
    assert reasons(crm_home, "transactions") == {"bad_type": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("decimal_separator: ','\n    thousands_separator: ','", "differ from decimal"),
        ("thousands_separator: '_'", "thousands_separator must be one of"),
    ],
)
def test_a_number_format_that_cannot_be_read_is_refused(crm_home, options, message):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    (crm_home / "landing" / "mapping.yml").write_text(f"customers:\n  csv:\n    {options}\n")
    with pytest.raises(BadInputError, match=message):
        load_entity("customers")


def test_a_file_still_being_copied_waits_for_a_later_run(crm_home):
    """A cut last line loaded a wrong value (1234.56 read as 1). A `.part` name, or a text
    file changed moments ago whose last line has no newline, waits; once it has settled,
    it loads as it is."""
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")
    header = "transaction_id,customer_id,occurred_at,amount,status\n"
    write(crm_home, "transactions", "a.csv", header + "T9,C1,2024-02-01,7,completed\n")
    load_entity("transactions")  # yesterday's delivery
    write(crm_home, "transactions", "t.csv.part", header + "T0,C1,2024-03-01,5,completed\n")
    # no final newline, changed just now: the copy may be cut anywhere in that line
    cut = write(crm_home, "transactions", "t.csv", header + "T1,C1,2024-03-01,1234.56,completed")
    waiting = load_entity("transactions")
    assert (waiting.files_found, waiting.rows_read) == (1, 0)  # a.csv, already loaded
    old = cut.stat().st_mtime - 3600  # an hour later, nothing changed it: it is complete
    os.utime(cut, (old, old))
    settled = load_entity("transactions")
    assert (settled.files_loaded, settled.rows_loaded) == (1, 1)
    assert query(
        crm_home, "SELECT CAST(amount AS VARCHAR) FROM raw.transactions WHERE transaction_id = 'T1'"
    ) == [("1234.56",)]
