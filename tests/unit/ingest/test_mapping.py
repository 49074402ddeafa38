"""The column mapping file: user exports with their own column names."""

from __future__ import annotations

import pytest

from crm.errors import BadInputError
from crm.warehouse import session
from ingest import quarantine
from ingest.load import load_entity
from ingest.mapping import load_mapping
from tests.conftest import warehouse_query as query


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


def _interactions(home, rows: str, mapping: str) -> None:
    folder = home / "landing" / "interactions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "export.csv").write_text(
        "interaction_id,customer_id,occurred_at,channel\n" + rows, encoding="utf-8"
    )
    (home / "landing" / "mapping.yml").write_text(mapping, encoding="utf-8")


def test_source_values_load_as_the_contract_values_the_map_names(crm_home):
    _interactions(
        crm_home,
        "I1,C1,2024-03-01,E-Mail\nI2,C1,2024-03-02,  e-mail \nI3,C1,2024-03-03,短信\n"
        "I4,C1,2024-03-04,SMS\nI5,C1,2024-03-05,\n",
        "interactions:\n  values_match: loose\n  values:\n"
        "    channel: {e-mail: email, 短信: sms}\n",
    )
    assert load_entity("interactions").rows_loaded == 5
    loaded = dict(query(crm_home, "SELECT interaction_id, channel FROM raw.interactions"))
    # a value that already is a contract value passes; loose matching ignores case
    assert loaded == {"I1": "email", "I2": "email", "I3": "sms", "I4": "sms", "I5": None}


def test_an_unmapped_value_is_quarantined_naming_column_and_value_and_listed(crm_home):
    _interactions(
        crm_home,
        "I1,C1,2024-03-01,Mail\nI2,C1,2024-03-02,Fax\nI3,C1,2024-03-03,Fax\nI4,C1,2024-03-04,O'Neil\n",
        "interactions:\n  values:\n    channel: {Mail: email}\n",
    )
    result = load_entity("interactions")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 3)
    reasons = query(
        crm_home, "SELECT reason_code, reason FROM audit.quarantine ORDER BY row_number"
    )
    assert reasons[0] == ("unmapped_value", "channel value 'Fax' is not in the value mapping")
    with session(read_only=True) as con:
        listed = quarantine.unmapped_values(con)
    assert listed.to_dict("records") == [
        {"entity": "interactions", "column_name": "channel", "rows": 2, "value": "Fax"},
        {"entity": "interactions", "column_name": "channel", "rows": 1, "value": "O'Neil"},
    ]


def test_any_other_value_can_load_empty_or_as_one_value(crm_home):
    _interactions(
        crm_home,
        "I1,C1,2024-03-01,Mail\nI2,C1,2024-03-02,Fax\n",
        "interactions:\n  values:\n    channel: {Mail: email, '*': null}\n",
    )
    assert load_entity("interactions").rows_quarantined == 0
    loaded = dict(query(crm_home, "SELECT interaction_id, channel FROM raw.interactions"))
    assert loaded == {"I1": "email", "I2": None}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("channel: {Mail: letter}", "mapped to 'letter', which channel does not allow"),
        ("customer_id: {x: null}", "mapped to empty, but customer_id is required"),
        ("medium: {x: y}", "not a column of interactions"),
    ],
)
def test_a_value_map_the_contract_cannot_take_is_refused_before_loading(crm_home, values, message):
    _interactions(crm_home, "I1,C1,2024-03-01,Mail\n", f"interactions:\n  values:\n    {values}\n")
    with pytest.raises(BadInputError, match=message):
        load_entity("interactions")


def test_dates_in_a_declared_format_are_read_and_nothing_is_guessed(crm_home):
    (crm_home / "landing" / "customers").mkdir()
    (crm_home / "landing" / "customers" / "export.csv").write_text(
        "customer_id;created_at;birth_date\nC1;03.04.2024 17:05;03.04.1990\n"
        "C2;2024-04-03;1990-04-03\nC3;13.04.2024;31.12.1989\n"
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  csv:\n    delimiter: ';'\n    date_format: '%d.%m.%Y'\n"
        "    timestamp_format: '%d.%m.%Y %H:%M'\n"
    )
    result = load_entity("customers")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    loaded = query(
        crm_home,
        "SELECT customer_id, CAST(created_at AS VARCHAR), CAST(birth_date AS VARCHAR) "
        "FROM raw.customers ORDER BY 1",
    )
    assert loaded == [
        ("C1", "2024-04-03 17:05:00", "1990-04-03"),
        ("C3", "2024-04-13 00:00:00", "1989-12-31"),
    ]
    # ISO dates are not taken when another format is declared
    assert query(crm_home, "SELECT reason_code FROM audit.quarantine") == [("bad_type",)]


def test_names_as_keys_join_across_files_and_one_column_gives_two(crm_home):
    landing = crm_home / "landing"
    (landing / "sales_reps").mkdir()
    (landing / "sales_reps" / "teams.csv").write_text(
        "sales_agent,regional_office\nAnna  Berg,West\n"
    )
    (landing / "customers").mkdir()
    (landing / "customers" / "accounts.csv").write_text("account\nAcme Corp\n")
    (landing / "opportunities").mkdir()
    (landing / "opportunities" / "deals.csv").write_text(
        "opportunity_id,sales_agent,account,deal_stage\nD1,anna berg,ACME corp,lead\n"
        "D2,Anna Berg,,won\nD3,Bo Ek,Acme Corp,lead\n"
    )
    (landing / "mapping.yml").write_text(
        "sales_reps:\n  columns: {sales_agent: [owner_id, name], regional_office: region}\n"
        "  keys_from_names: [owner_id]\n"
        "customers:\n  columns: {account: [customer_id, full_name]}\n"
        "  keys_from_names: [customer_id]\n"
        "opportunities:\n  columns: {sales_agent: owner_id, account: customer_id, "
        "deal_stage: stage}\n  keys_from_names: [owner_id, customer_id]\n"
    )
    for entity in ("customers", "sales_reps", "opportunities"):
        load_entity(entity)
    assert query(crm_home, "SELECT owner_id, name, region FROM raw.sales_reps") == [
        ("anna berg", "Anna  Berg", "West")
    ]
    assert query(
        crm_home, "SELECT opportunity_id, owner_id, customer_id FROM raw.opportunities ORDER BY 1"
    ) == [("D1", "anna berg", "acme corp"), ("D2", "anna berg", None)]
    assert query(crm_home, "SELECT reason FROM audit.quarantine") == [("unknown owner_id bo ek",)]


def test_keys_from_names_must_name_key_columns(tmp_path):
    path = tmp_path / "mapping.yml"
    path.write_text("opportunities:\n  keys_from_names: [amount]\n")
    with pytest.raises(BadInputError, match=r"keys_from_names lists \['amount'\]"):
        load_mapping(path)


def test_rows_held_back_for_an_unmapped_value_load_once_the_map_has_it(crm_home, tmp_path):
    _interactions(
        crm_home,
        "I1,C1,2024-03-01,Mail\nI2,C1,2024-03-02,Fax\n",
        "interactions:\n  values:\n    channel: {Mail: email}\n",
    )
    assert load_entity("interactions").rows_quarantined == 1
    with session(read_only=True) as con:
        quarantine.export(con, "interactions", tmp_path / "held.csv")
    (crm_home / "landing" / "mapping.yml").write_text(
        "interactions:\n  values:\n    channel: {Mail: email, Fax: phone}\n"
    )
    quarantine.resubmit("interactions", tmp_path / "held.csv")
    result = load_entity("interactions")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 0)
    assert query(crm_home, "SELECT channel FROM raw.interactions WHERE interaction_id = 'I2'") == [
        ("phone",)
    ]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ("{Yes: email}", "YAML reads True as a boolean"),
        ("{x: off}", "YAML reads False as a boolean"),
        ("{~: email}", "YAML reads None as a null"),
    ],
)
def test_yaml_booleans_and_nulls_in_a_value_map_must_be_quoted(tmp_path, pairs, message):
    path = tmp_path / "mapping.yml"
    path.write_text(f"interactions:\n  values:\n    channel: {pairs}\n")
    with pytest.raises(BadInputError, match=message):
        load_mapping(path)


@pytest.mark.parametrize(
    ("values", "rows", "loaded", "held"),
    [
        # "*": value fills neither empty cells nor values that are already contract values
        (
            "{Mail: email, '*': web}",
            "I1,C1,2024-03-01,\nI2,C1,2024-03-02,SMS\nI3,C1,2024-03-03,Fax\n",
            {"I1": None, "I2": "sms", "I3": "web"},
            0,
        ),
        # loose matching folds spaces (no-break and ideographic too) and case, on both sides
        (
            "{'E  Mail': email}",
            "I1,C1,2024-03-01,e mail\nI2,C1,2024-03-02,E\u00a0MAIL\n"
            "I3,C1,2024-03-03,\u3000Sms\u3000\n",
            {"I1": "email", "I2": "email", "I3": "sms"},
            0,
        ),
    ],
)
def test_value_maps_keep_empty_and_contract_values(crm_home, values, rows, loaded, held):
    _interactions(
        crm_home, rows, f"interactions:\n  values_match: loose\n  values:\n    channel: {values}\n"
    )
    assert load_entity("interactions").rows_quarantined == held
    assert dict(query(crm_home, "SELECT interaction_id, channel FROM raw.interactions")) == loaded


def test_a_value_map_on_a_number_column_maps_and_lets_numbers_through(crm_home):
    (crm_home / "landing" / "transactions").mkdir()
    (crm_home / "landing" / "transactions" / "t.csv").write_text(
        "transaction_id,customer_id,occurred_at,amount,quantity\n"
        "T1,C1,2024-03-01,5,n/a\nT2,C1,2024-03-01,5,3\nT3,C1,2024-03-01,5,lots\n"
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "transactions:\n  values:\n    quantity: {n/a: null}\n"
    )
    result = load_entity("transactions")
    assert (result.rows_loaded, result.rows_quarantined) == (2, 1)
    assert dict(query(crm_home, "SELECT transaction_id, quantity FROM raw.transactions")) == {
        "T1": None,
        "T2": 3,
    }
    assert query(crm_home, "SELECT reason_code FROM audit.quarantine") == [("unmapped_value",)]


def test_a_value_map_on_a_name_key_compares_names_loosely(crm_home):
    (crm_home / "landing" / "products").mkdir()
    (crm_home / "landing" / "products" / "p.csv").write_text("product\nGTX Pro\n")
    (crm_home / "landing" / "transactions").mkdir()
    (crm_home / "landing" / "transactions" / "t.csv").write_text(
        "transaction_id,customer_id,occurred_at,amount,product\n"
        "T1,C1,2024-03-01,5,gtxpro\nT2,C1,2024-03-01,5,gtx  PRO\n"
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "products:\n  columns: {product: product_id}\n  keys_from_names: [product_id]\n"
        "transactions:\n  columns: {product: product_id}\n  keys_from_names: [product_id]\n"
        "  values:\n    product_id: {GTXPro: GTX Pro}\n"
    )
    load_entity("products")
    assert load_entity("transactions").rows_quarantined == 0
    assert query(crm_home, "SELECT DISTINCT product_id FROM raw.transactions") == [("gtx pro",)]


def test_declaring_only_dates_keeps_iso_timestamps_readable(crm_home):
    (crm_home / "landing" / "customers").mkdir()
    (crm_home / "landing" / "customers" / "c.csv").write_text(
        "customer_id,birth_date,updated_at\nC1,03.04.1990,2024-04-05 10:00:00\n"
        "C2,1990-04-03,2024-04-05T10:00:00\n"
    )
    (crm_home / "landing" / "mapping.yml").write_text(
        "customers:\n  csv:\n    date_format: '%d.%m.%Y'\n"
    )
    result = load_entity("customers")
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert query(
        crm_home,
        "SELECT CAST(birth_date AS VARCHAR), CAST(updated_at AS VARCHAR) FROM raw.customers",
    ) == [("1990-04-03", "2024-04-05 10:00:00")]


def test_a_wrong_value_map_of_any_entity_stops_every_load(crm_home):
    (crm_home / "landing" / "customers").mkdir()
    (crm_home / "landing" / "customers" / "c.csv").write_text("customer_id\nC1\n")
    (crm_home / "landing" / "mapping.yml").write_text(
        "interactions:\n  values:\n    channel: {Mail: letter}\n"
    )
    with pytest.raises(BadInputError, match="mapped to 'letter'"):
        load_entity("customers")
