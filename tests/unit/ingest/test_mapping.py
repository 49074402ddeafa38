"""The column mapping file: user exports with their own column names."""

from __future__ import annotations

import pytest

from crm.errors import BadInputError
from ingest.load import load_entity
from ingest.mapping import load_mapping


def test_mapped_columns_load_under_contract_names(crm_home):
    (crm_home / "landing" / "customers").mkdir()
    (crm_home / "landing" / "customers" / "export.csv").write_text(
        "Cust No;Signup;Town\nA-1;2024-01-05;Oslo\n"
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  columns:\n    Cust No: customer_id\n    signup: created_at\n    town: city\n"
        "  csv:\n    delimiter: ';'\n"
    )
    assert load_entity("customers").rows_loaded == 1


def test_a_mapped_column_missing_from_the_file_is_an_error(crm_home):
    (crm_home / "landing" / "customers").mkdir()
    (crm_home / "landing" / "customers" / "export.csv").write_text("customer_id\nC1\n")
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  columns:\n    cust_town: city\n"
    )
    with pytest.raises(BadInputError, match=r"mapping file names column\(s\) \['cust_town'\]"):
        load_entity("customers")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clients:\n  columns: {}\n", "unknown entity 'clients'"),
        ("customers:\n  columns:\n    x: not_a_column\n", "not a column of customers"),
        ("customers:\n  columns:\n    a: city\n    b: city\n", "several columns are mapped onto"),
        ("customers:\n  csv:\n    sep: ';'\n", "unknown csv options"),
        ("customers: [\n", "not valid YAML"),
    ],
)
def test_mistakes_in_the_mapping_file_are_reported(tmp_path, text, message):
    path = tmp_path / "mapping.yml"
    path.write_text(text)
    with pytest.raises(BadInputError, match=message):
        load_mapping(path)
