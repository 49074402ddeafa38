"""Every DAG imports cleanly, cheaply and follows the house rules (STYLE.md 1-3)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

DAG_FILES = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))
HEAVY = {"pandas", "numpy", "duckdb", "pyarrow", "sklearn", "great_expectations", "dbt", "yaml"}

PROBE = r"""
import importlib.util, sys
import airflow.sdk  # the SDK itself is allowed
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(",".join(sorted({n.split(".")[0] for n in set(sys.modules) - before})))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_file_imports_nothing_heavy(path):
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.strip().split(","))
    assert not loaded & HEAVY, f"{path.name} imports {loaded & HEAVY} at parse time"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAG_FILES[0].parent))


def test_dags_load_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) == len(DAG_FILES)


def test_dag_ids_match_file_names_and_follow_the_house_rules(dagbag):
    from crm.alerts import RunFailureNotifier
    from crm.runs import EARLIEST_AS_OF

    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id
        assert dag.catchup is False
        assert dag.max_active_runs == 1
        assert dag.doc_md and dag.tags
        assert dag.start_date.tzinfo is not None
        # every as-of date a run takes lies on or after it: Airflow marks a run dated
        # before a DAG's start_date successful without running a task
        assert dag.start_date.date() == EARLIEST_AS_OF, dag_id
        for task in dag.tasks:
            name = f"{dag_id}.{task.task_id}"
            assert task.retries >= 2, name
            assert task.owner == "crm-analytics", name
            assert task.execution_timeout is not None, name
            assert task.execution_timeout <= timedelta(hours=4), name
            assert any(
                isinstance(cb, RunFailureNotifier) for cb in task.on_failure_callback or []
            ), name


def test_pipeline_ingests_parents_before_children(dagbag):
    from ingest.contract import ENTITIES

    dag = dagbag.dags["crm_pipeline"]
    for name, entity in ENTITIES.items():
        task = dag.get_task(f"ingest_{name}")
        assert task.pool == "warehouse_writer"
        for parent in entity.parents:
            assert f"ingest_{parent}" in task.upstream_task_ids
    raw = dag.get_task("raw_loaded")
    assert {f"ingest_{n}" for n in ENTITIES} <= raw.upstream_task_ids
    assert [a.name for a in raw.outlets] == ["crm_warehouse_raw"]
    chain = [
        "raw_loaded",
        "build_models",
        "fit_customer_lifetime_values",
        "build_customer_360",
        "publish_bi_snapshot",
        "generate_docs",
    ]
    for before, after in zip(chain, chain[1:], strict=False):
        assert before in dag.get_task(after).upstream_task_ids, after
    assert [a.name for a in dag.get_task("build_customer_360").outlets] == ["crm_warehouse_models"]
    assert [a.name for a in dag.get_task("publish_bi_snapshot").outlets] == ["crm_bi_snapshot"]


def test_a_failed_run_is_recorded_whatever_task_failed(dagbag):
    dag = dagbag.dags["crm_pipeline"]
    record = dag.get_task("record_failure")
    assert record.trigger_rule == "one_failed"
    assert record.upstream_task_ids == {t.task_id for t in dag.tasks} - {"record_failure"}


def test_models_are_trained_weekly_and_scoring_follows_the_pipeline_and_training(dagbag):
    from airflow.sdk.definitions.asset import AssetAny

    train = dagbag.dags["train_target_models"]
    assert train.timetable.expression == "0 4 * * 1"
    assert [a.name for a in train.get_task("train_and_gate").outlets] == ["crm_target_models"]
    score = dagbag.dags["score_target_customers"]
    condition = score.timetable.asset_condition
    assert isinstance(condition, AssetAny)
    assert {a.name for a in condition.objects} == {"crm_warehouse_models", "crm_target_models"}
    assert [a.name for a in score.get_task("score").outlets] == ["crm_audiences"]


def test_activation_follows_scoring(dagbag):
    dag = dagbag.dags["activate_audiences"]
    assert {a.name for a in dag.timetable.asset_condition.objects} == {"crm_audiences"}
    assert [a.name for a in dag.get_task("publish").outlets] == ["crm_published_audiences"]
    assert "publish" in dag.get_task("write_run_report").upstream_task_ids
