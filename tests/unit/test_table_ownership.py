"""Who owns which table, checked on the source: dbt owns staging, intermediate and marts
(no Python writes them), Python's own tables are created in `crm/tables.py` only, and the
Python stages read marts (and the features and audience inputs built for them), with the
one reader of a lower layer named in `dbt_project/models/exposures.yml` and here."""

from __future__ import annotations

import re
from pathlib import Path

from crm.settings import REPO_ROOT

PACKAGES = ("crm", "ingest", "datagen", "expectations", "ml", "activation", "dags")

#: Python that reads dbt's lower layers, and what: the CLV fit is part of the
#: transformation (between the two dbt phases) and reads the intermediate BTYD summary.
LOWER_LAYER_READERS = {
    "ml/clv.py": {"intermediate.int_customers_purchases_summarised"},
}

#: CREATE TABLE outside crm/tables.py: copies and other databases, not warehouse tables
#: of their own (temporary work tables are not counted).
OTHER_CREATORS = {
    "crm/bi_snapshot.py",  # the BI snapshot file, copies of the marts
    "crm/pg_warehouse.py",  # the PostgreSQL copy of the sources
    "ml/warehouse.py",  # the model registry's tables, replaced whole from the registry
    "activation/crm_db.py",  # the CRM database's audience tables
    "datagen/source_db.py",  # the demo CRM database
    "ingest/dry_run.py",  # crm check: the checked rows in an in-memory database
}

LOWER_LAYER = re.compile(r"\b(staging|intermediate)\.((?:stg|int)_\w+)")
WRITE_TO_DBT = re.compile(
    r"\b(INSERT\s+INTO|DELETE\s+FROM|UPDATE|CREATE\s+(?:OR\s+REPLACE\s+)?(?:TABLE|VIEW)"
    r"(?:\s+IF\s+NOT\s+EXISTS)?|DROP\s+(?:TABLE|VIEW)(?:\s+IF\s+EXISTS)?)\s+"
    r"(staging|intermediate|marts)\.",
    re.IGNORECASE,
)
CREATE_TABLE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\b(?!.*\bTEMP)", re.IGNORECASE)


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(REPO_ROOT)): path.read_text()
        for package in PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }


def test_no_python_writes_dbts_schemas():
    found = {name: WRITE_TO_DBT.findall(text) for name, text in _sources().items()}
    # the exceptions: moving the release tables an older version kept in marts, and
    # dropping what an older version built there (in DuckDB and on PostgreSQL)
    assert found.pop("crm/tables.py") == [
        ("DROP VIEW IF EXISTS", "marts"),
        ("DROP TABLE", "marts"),
        ("DROP TABLE IF EXISTS", "marts"),
    ]
    assert found.pop("crm/pg_warehouse.py") == [("DROP TABLE IF EXISTS", "marts")]
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_python_reads_lower_layers_only_where_declared():
    found = {}
    for name, text in _sources().items():
        hits = {".".join(hit) for hit in LOWER_LAYER.findall(text)}
        if hits:
            found[name] = hits
    assert found == LOWER_LAYER_READERS


def test_warehouse_tables_are_created_in_one_module():
    creators = {
        name
        for name, text in _sources().items()
        if name != "crm/tables.py" and any(CREATE_TABLE.search(line) for line in text.splitlines())
    }
    assert creators == OTHER_CREATORS


def test_the_declared_readers_are_in_the_exposures():
    exposures = (REPO_ROOT / "dbt_project" / "models" / "exposures.yml").read_text()
    for tables in LOWER_LAYER_READERS.values():
        for table in tables:
            assert f"ref('{table.split('.')[1]}')" in exposures, table


def test_the_paths_are_real():
    for name in (*LOWER_LAYER_READERS, *OTHER_CREATORS):
        assert (Path(REPO_ROOT) / name).exists(), name
