from ingest.contract import ENTITIES, LOAD_ORDER


def test_parents_load_before_children():
    seen = set()
    for name in LOAD_ORDER:
        assert set(ENTITIES[name].parents) <= seen
        seen.add(name)


def test_keys_and_references_name_real_columns():
    for entity in ENTITIES.values():
        assert set(entity.key) <= set(entity.column_names)
        for ref in entity.references:
            assert ref.column in entity.column_names
            assert ref.parent_column in ENTITIES[ref.parent].column_names


def test_only_customers_are_required():
    # a B2B deal export has accounts and deals, no purchases
    assert {e.name for e in ENTITIES.values() if e.required} == {"customers"}


def test_personal_columns_are_marked():
    personal = {c.name for c in ENTITIES["customers"].columns if c.personal}
    assert personal == {"full_name", "email", "phone"}
