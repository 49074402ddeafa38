"""`crm contract` and `crm check`: the contract as this home's configuration makes it, an
example row per entity that loads clean, and a landing folder checked without loading a
thing."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from crm.settings import get_settings
from ingest.contract import ENTITIES, LOAD_ORDER
from ingest.examples import example_rows
from ingest.load import configured, load_entity
from tests.conftest import run_crm
from tests.conftest import warehouse_query as query

PIPELINES = """\
pipelines:
  deals:
    stages: [prospect, {demo: 0.3}, offer]
    closing: {won: signed, lost: [lost, no decision]}
"""

TRANSACTIONS_MAPPING = """\
transactions:
  columns:
    order_no: transaction_id
    order_status: status
  values:
    status:
      Paid: completed
      Storno: cancelled
"""


def _examples() -> dict[str, dict[str, str]]:
    """The example rows as `crm contract` shows them for the current home."""
    settings = get_settings()
    return example_rows({name: configured(name, settings)[0] for name in ENTITIES})


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_examples(landing: Path, entities=LOAD_ORDER) -> None:
    examples = _examples()
    for name in entities:
        _write_csv(landing / name / f"{name}.csv", [examples[name]])


def _digest(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


# -- crm contract


def test_contract_lists_every_entity_with_its_key_columns_and_an_example(crm_home):
    text = run_crm("contract", home=crm_home).stdout
    for name, entity in ENTITIES.items():
        assert f"\n{name}" in text, name
        assert f"key: {', '.join(entity.key)}" in text
    assert text.count("example row (CSV, contract column names):") == len(ENTITIES)
    assert "transaction_id,customer_id,product_id,occurred_at" in text
    assert "status          text       one of: completed, refunded, cancelled" in text
    doc = json.loads(run_crm("contract", "--json", home=crm_home).stdout)
    assert list(doc["entities"]) == list(ENTITIES)
    assert doc["mapping_file"] is None and doc["pipelines_file"].endswith("sales_pipelines.yml")


def test_contract_of_one_entity_as_text_and_json(crm_home):
    text = run_crm("contract", "transactions", home=crm_home).stdout
    heading = "transactions" + ("  (required entity)" if ENTITIES["transactions"].required else "")
    assert f"\n{heading}\n" in text and "\ncustomers" not in text
    required, optional = text.split("required columns:")[1].split("optional columns:")
    assert [line.split()[0] for line in required.strip().splitlines()] == [
        "transaction_id", "customer_id", "occurred_at", "amount",
    ]  # fmt: skip
    assert "product_id" in optional and "-> products.product_id" in optional
    assert "references: customer_id -> customers, product_id -> products" in text

    doc = json.loads(run_crm("contract", "transactions", "--json", home=crm_home).stdout)
    (entity,) = doc["entities"].values()
    assert entity["key"] == ["transaction_id"]
    assert entity["required"] is ENTITIES["transactions"].required
    columns = {c["name"]: c for c in entity["columns"]}
    assert columns["amount"]["type"] == "money" and columns["amount"]["required"]
    assert columns["amount"]["minimum"] == 0
    assert columns["status"]["allowed"] == ["completed", "refunded", "cancelled"]
    assert columns["customer_id"]["references"] == "customers.customer_id"
    assert entity["references"][0] == {
        "column": "customer_id", "parent": "customers", "parent_column": "customer_id"
    }  # fmt: skip
    assert list(entity["example"]) == [c.name for c in ENTITIES["transactions"].columns]
    assert entity["example"]["customer_id"] == _examples()["customers"]["customer_id"]

    customers = json.loads(run_crm("contract", "customers", "--json", home=crm_home).stdout)
    assert customers["entities"]["customers"]["personal"] == ["full_name", "email", "phone"]
    assert customers["entities"]["customers"]["computed_at_load"] == {"email_hash": "email"}


def test_stage_values_come_from_the_landings_pipelines_file(crm_home):
    (crm_home / "landing" / "pipelines.yml").write_text(PIPELINES)
    doc = json.loads(run_crm("contract", "opportunities", "--json", home=crm_home).stdout)
    stage = next(c for c in doc["entities"]["opportunities"]["columns"] if c["name"] == "stage")
    expected = ["prospect", "demo", "offer", "signed", "lost", "no decision"]
    assert stage["allowed"] == expected and stage["allowed_from"] == "pipelines file"
    assert doc["pipelines_file"] == str(crm_home / "landing" / "pipelines.yml")
    assert doc["entities"]["opportunities"]["example"]["stage"] == "prospect"
    text = run_crm("contract", "opportunity_stage_history", home=crm_home).stdout
    assert f"one of (pipelines file): {', '.join(expected)}" in text


def test_the_value_mapping_and_source_columns_are_shown_beside_the_column(crm_home):
    (crm_home / "landing" / "mapping.yml").write_text(TRANSACTIONS_MAPPING)
    text = run_crm("contract", "transactions", home=crm_home).stdout
    assert f"mapping file: {crm_home / 'landing' / 'mapping.yml'}" in text
    assert "values mapped: 'Paid' -> completed; 'Storno' -> cancelled" in text
    assert "from your column(s): order_status" in text
    assert "from your column(s): order_no" in text
    doc = json.loads(run_crm("contract", "transactions", "--json", home=crm_home).stdout)
    columns = {c["name"]: c for c in doc["entities"]["transactions"]["columns"]}
    assert columns["status"]["value_map"] == {"Paid": "completed", "Storno": "cancelled"}
    assert columns["status"]["source_columns"] == ["order_status"]
    assert columns["amount"]["value_map"] is None and columns["amount"]["source_columns"] == []


def test_an_unknown_entity_is_a_usage_error(crm_home):
    proc = run_crm("contract", "deals", home=crm_home, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("crm contract: unknown entity 'deals'; the contract")
    assert "opportunities" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_crm("contract", "deals", "--json", home=crm_home, check=False)
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit_code"] == 2


@pytest.mark.parametrize("pipelines", [None, PIPELINES], ids=["built-in", "own pipelines"])
def test_the_example_rows_of_every_entity_load_with_nothing_quarantined(crm_home, pipelines):
    if pipelines:
        (crm_home / "landing" / "pipelines.yml").write_text(pipelines)
    _write_examples(crm_home / "landing")
    for name in LOAD_ORDER:
        result = load_entity(name)
        assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (1, 1, 0), name
        assert result.rows_with_nulled_values == 0 and result.ignored_columns == [], name
    assert query(crm_home, "SELECT count(*) FROM audit.quarantine") == [(0,)]


# -- crm check


def test_check_of_a_clean_folder_exits_0_and_writes_nothing(crm_home, tmp_path):
    export = tmp_path / "export"
    _write_examples(export)
    before = sorted(p.relative_to(crm_home) for p in crm_home.rglob("*"))
    proc = run_crm("check", str(export), "--json", home=crm_home)
    doc = json.loads(proc.stdout)
    assert doc["ok"] is True and doc["warehouse"] is None and doc["landing"] == str(export)
    assert len(doc["files"]) == len(LOAD_ORDER)
    for f in doc["files"]:
        assert (f["rows_read"], f["rows_would_load"], f["rows_would_be_quarantined"]) == (1, 1, 0)
        assert f["quarantined_by_reason"] == {}
    # every reference was checked, against the folder's own parent rows
    refs = [r for e in doc["entities"].values() for r in e["references"]]
    assert refs and all(r["checked"] and r["folder_rows"] == 1 for r in refs)
    assert sorted(p.relative_to(crm_home) for p in crm_home.rglob("*")) == before
    assert not (crm_home / "warehouse").exists()

    text = run_crm("check", str(export), home=crm_home).stdout
    assert "customers/customers.csv: 1 rows read, 1 would load, 0 would be quarantined" in text
    assert f"{len(LOAD_ORDER)} file(s): {len(LOAD_ORDER)} would load completely" in text


def test_check_of_a_folder_with_bad_rows_exits_3_naming_reasons_and_counts(crm_home, tmp_path):
    export = tmp_path / "export"
    (export / "mapping.yml").parent.mkdir(parents=True)
    (export / "mapping.yml").write_text(TRANSACTIONS_MAPPING)
    _write_csv(
        export / "customers" / "customers.csv",
        [
            {"customer_id": "C1", "email": "a@example.com", "shoe_size": "42"},
            {"customer_id": "C2", "email": "two@x.com; three@y.com", "shoe_size": ""},
            {"customer_id": "", "email": "", "shoe_size": ""},
        ],
    )
    rows = [
        ("T1", "C1", "2024-03-01", "12.50", "Paid"),
        ("T2", "C1", "2024-03-01", "abc", "Paid"),
        ("T3", "C1", "2024-03-01", "5", "Bezahlt"),
        ("T4", "C1", "2024-03-01", "5", "Bezahlt"),
        ("T5", "C1", "2024-03-01", "5", "offen"),
        ("T6", "C404", "2024-03-01", "5", "Storno"),
        ("T1", "C1", "2024-03-01", "12.50", "Paid"),
    ]
    header = ("order_no", "customer_id", "occurred_at", "amount", "order_status")
    _write_csv(export / "transactions" / "t.csv", [dict(zip(header, r, strict=True)) for r in rows])
    with (export / "transactions" / "t.csv").open("a") as fh:
        fh.write("T7,C1,2024-03-01,5,Paid,one too many\n")

    proc = run_crm("check", str(export), "--json", home=crm_home, check=False)
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and doc["mapping_file"] == str(export / "mapping.yml")
    customers, transactions = doc["files"]
    assert (customers["rows_read"], customers["rows_would_load"]) == (3, 2)
    assert customers["quarantined_by_reason"] == {
        "missing_required": {"rows": 1, "examples": ["row 3: customer_id is missing"]}
    }
    assert customers["ignored_columns"] == ["shoe_size"]
    assert customers["rows_with_nulled_values"] == 1
    by_reason = transactions["quarantined_by_reason"]
    assert {code: r["rows"] for code, r in by_reason.items()} == {
        "bad_type": 1,
        "duplicate_key": 1,
        "unknown_reference": 1,
        "unmapped_value": 3,
        "unparseable": 1,
    }
    assert (transactions["rows_read"], transactions["rows_would_load"]) == (8, 1)
    assert by_reason["unknown_reference"]["examples"] == ["row 6: unknown customer_id C404"]
    assert len(by_reason["unmapped_value"]["examples"]) == 3
    assert by_reason["unparseable"]["examples"][0].startswith("line 9 of the file could not")
    assert transactions["unmapped_values"] == [
        {"column": "status", "value": "Bezahlt", "rows": 2},
        {"column": "status", "value": "offen", "rows": 1},
    ]

    text = run_crm("check", str(export), home=crm_home, check=False).stdout
    assert "transactions/t.csv: 8 rows read, 1 would load, 7 would be quarantined" in text
    assert "    unmapped_value: 3 rows" in text
    assert "        row 3: status value 'Bezahlt' is not in the value mapping" in text
    assert "        status 'Bezahlt': 2 rows" in text
    assert "columns not in the contract, ignored: shoe_size" in text
    assert not (crm_home / "warehouse").exists()


def test_check_of_one_file_takes_its_parents_from_the_same_landing(crm_home, tmp_path):
    export = tmp_path / "export"
    _write_csv(export / "customers" / "c.csv", [{"customer_id": "C1"}])
    file = _write_csv(
        export / "transactions" / "2026" / "t.csv",
        [
            {
                "transaction_id": "T1",
                "customer_id": "C1",
                "occurred_at": "2026-01-02",
                "amount": "1",
            },
            {
                "transaction_id": "T2",
                "customer_id": "C2",
                "occurred_at": "2026-01-02",
                "amount": "1",
            },
        ],
    )
    proc = run_crm("check", str(file), "--json", home=crm_home, check=False)
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert list(doc["entities"]) == ["transactions"] and doc["parents_read"] == {"customers": 1}
    (checked,) = doc["files"]
    assert checked["file"] == "transactions/2026/t.csv"
    assert checked["quarantined_by_reason"]["unknown_reference"]["rows"] == 1
    refs = {r["parent"]: r for r in doc["entities"]["transactions"]["references"]}
    assert refs["customers"]["checked"] and not refs["products"]["checked"]
    text = run_crm("check", str(file), home=crm_home, check=False).stdout
    assert (
        "transactions: reference product_id -> products not checked: no products rows in this "
        "folder, and no warehouse to read"
    ) in text

    stray = _write_csv(tmp_path / "stray" / "t.csv", [{"transaction_id": "T1"}])
    proc = run_crm("check", str(stray), home=crm_home, check=False)
    assert proc.returncode == 2
    assert f"cannot tell which entity {stray} holds" in proc.stderr


def test_check_reads_parents_from_the_home_warehouse_without_changing_it(crm_home, tmp_path):
    _write_examples(crm_home / "landing", ["customers", "products"])
    load_entity("customers")
    load_entity("products")
    warehouse = crm_home / "warehouse" / "crm.duckdb"
    before = _digest(warehouse), sorted(warehouse.parent.iterdir())
    customer = _examples()["customers"]["customer_id"]
    export = tmp_path / "export"
    _write_csv(
        export / "transactions" / "t.csv",
        [
            {"transaction_id": "T1", "customer_id": customer, "occurred_at": "2026-01-02",
             "amount": "1"},
            {"transaction_id": "T2", "customer_id": "C404", "occurred_at": "2026-01-02",
             "amount": "1"},
        ],
    )  # fmt: skip
    proc = run_crm("check", str(export), "--json", home=crm_home, check=False)
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["warehouse"] == str(warehouse)
    refs = {r["parent"]: r for r in doc["entities"]["transactions"]["references"]}
    assert refs["customers"] == {
        "column": "customer_id", "parent": "customers", "folder_rows": 0,
        "warehouse_rows": 1, "checked": True,
    }  # fmt: skip
    (checked,) = doc["files"]
    assert checked["rows_would_load"] == 1
    assert checked["quarantined_by_reason"]["unknown_reference"]["rows"] == 1
    assert (_digest(warehouse), sorted(warehouse.parent.iterdir())) == before
    assert query(crm_home, "SELECT count(*) FROM raw.transactions") == [(0,)]
    assert query(crm_home, "SELECT count(*) FROM audit.load_batches") == [(2,)]


def test_a_file_that_cannot_be_read_is_reported_and_the_others_are_checked(crm_home, tmp_path):
    export = tmp_path / "export"
    _write_examples(export, ["customers", "products"])
    (export / "products" / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    proc = run_crm("check", str(export), "--json", home=crm_home, check=False)
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    files = {f["file"]: f for f in doc["files"]}
    assert files["products/broken.parquet"]["error"].startswith(
        f"{export / 'products' / 'broken.parquet'}: cannot be read as PARQUET"
    )
    assert files["customers/customers.csv"]["rows_would_load"] == 1
    assert files["products/products.csv"]["rows_would_load"] == 1
    text = run_crm("check", str(export), home=crm_home, check=False).stdout
    assert "products/broken.parquet: cannot be read: " in text
    assert "3 file(s): 2 would load completely, 0 with rows held back, 1 cannot be read" in text

    empty = export / "customers" / "empty.csv"
    empty.write_text("")
    proc = run_crm("check", str(empty), "--json", home=crm_home, check=False)
    assert proc.returncode == 3
    (checked,) = json.loads(proc.stdout)["files"]
    assert "the file is empty (0 bytes)" in checked["error"]
