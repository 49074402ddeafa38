"""Each dbt invocation has a target folder of its own (issue 14, defect 4): two builds on
one home once shared `dbt/target/run_results.json`, and a summary reported the other
build's models."""

from __future__ import annotations

import threading
import time
from datetime import date

from crm.dbt import build
from crm.settings import get_settings
from ingest.load import load_entity
from tests.unit.ingest.test_load import CUSTOMERS, write

AS_OF = date(2024, 6, 1)


def test_two_builds_at_once_each_report_their_own_models(crm_home):
    write(crm_home, "customers", "c.csv", CUSTOMERS)
    load_entity("customers")  # the raw tables every staging model reads
    settings = get_settings()
    selections = {
        "one": "stg_crm__products",
        "two": "stg_crm__customers stg_crm__customer_versions",
    }
    results, folders, errors = {}, set(), []

    def run(name: str) -> None:
        try:
            # models only: a test relating to a model neither builds would fail here
            results[name] = build(
                AS_OF, select=selections[name], exclude="test_type:data", settings=settings
            )
        except Exception as exc:  # reported below, with the other thread's outcome
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in selections]
    for thread in threads:
        thread.start()
    invocations = settings.dbt_state_dir / "invocations"
    while any(t.is_alive() for t in threads):
        if invocations.exists():
            folders |= {p.name for p in invocations.iterdir()}
        time.sleep(0.05)
    assert not errors, errors
    assert sorted(results["one"].model_seconds) == ["stg_crm__products"]
    assert sorted(results["two"].model_seconds) == [
        "stg_crm__customer_versions",
        "stg_crm__customers",
    ]
    # each wrote its own folder (both seen at once, or one after the other), now removed
    assert len({f for f in folders if f.startswith("build-")}) == 2
    assert not list(invocations.iterdir())
    # the last results and the parse cache are still where a person looks for them
    shared = settings.dbt_state_dir / "target"
    assert (shared / "run_results.json").exists() and (shared / "partial_parse.msgpack").exists()


def test_folders_left_by_killed_invocations_are_swept(tmp_path):
    import os

    from crm.dbt import STALE_INVOCATION_S, sweep_stale_invocations

    root = tmp_path / "invocations"
    for name in ("build-killed", "build-running"):
        (root / name).mkdir(parents=True)
        (root / name / "dbt.log").write_text("...")
    old = time.time() - STALE_INVOCATION_S - 60
    for path in (root / "build-killed", root / "build-killed" / "dbt.log"):
        os.utime(path, (old, old))
    # a folder whose files are recent is still in use, however old the folder itself
    os.utime(root / "build-running", (old, old))

    assert sweep_stale_invocations(root) == ["build-killed"]
    assert sorted(p.name for p in root.iterdir()) == ["build-running"]
