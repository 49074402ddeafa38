"""The `crm` command as people and scripts meet it: help with examples, the version, the
demo that never replaces somebody's own CRM, one JSON document on stdout, and one line
instead of a traceback for an expected error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from crm.cli import build_parser
from crm.cli.data import DEMO_MARK
from tests.conftest import run_crm


def test_help_lists_every_command_with_examples_and_exit_codes(tmp_path):
    proc = run_crm("--help", home=tmp_path)
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"\n    {name}" in proc.stdout, name
    assert "examples:" in proc.stdout and "crm demo --customers" in proc.stdout
    assert "3 bad input" in proc.stdout and "4 environment" in proc.stdout
    assert run_crm("--version", home=tmp_path).stdout.startswith("crm 0.")


def test_demo_refuses_a_home_holding_data_it_did_not_make(tmp_path):
    home = tmp_path / "home"
    own = home / "landing" / "customers" / "customers.csv"
    own.parent.mkdir(parents=True)
    own.write_text("customer_id\nC1\n")
    warehouse = home / "warehouse" / "crm.duckdb"
    warehouse.parent.mkdir()
    warehouse.write_bytes(b"not really a warehouse")
    proc = run_crm("demo", "--customers", "50", home=home, check=False)
    assert proc.returncode == 2
    assert "a demo would delete" in proc.stderr and "--force" in proc.stderr
    assert str(own.parent) in proc.stderr and str(warehouse.parent) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert own.read_text() == "customer_id\nC1\n" and warehouse.exists()
    assert not (home / DEMO_MARK).exists()


def test_json_output_is_one_document_on_stdout(tmp_path):
    proc = run_crm("quarantine", "--json", home=tmp_path / "empty")
    assert json.loads(proc.stdout) == {"warehouse": None, "held_back": []}
    assert "no warehouse yet" in proc.stderr
    proc = run_crm("models", "--json", home=tmp_path / "empty")
    assert json.loads(proc.stdout)["offers"] == {}


def test_an_unreachable_server_exits_4_in_one_line(tmp_path):
    proc = run_crm(
        "generate", "--customers", "10", "--target", "postgres", "--quiet",
        home=tmp_path, check=False,
        env={"CRM_SOURCE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"},
    )  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.strip().startswith("crm generate: PostgreSQL did not answer")
    assert "Traceback" not in proc.stderr


def test_a_usage_error_exits_2(tmp_path):
    proc = run_crm("models", "rollback", home=tmp_path, check=False)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip() == "crm models: which offer? crm models rollback OFFER [--to VERSION]"
    )


def test_crm_dbt_runs_dbt_with_the_projects_profile_and_date(tmp_path):
    proc = run_crm(
        "dbt", "--as-of", "2026-01-31", "--", "ls", "--select", "dim_customers",
        "--resource-type", "model", "--output", "name", home=tmp_path,
    )  # fmt: skip
    assert proc.stdout.strip().splitlines()[-1] == "dim_customers"
    command = proc.stderr.strip().splitlines()[0]  # the command line it ran, for the record
    assert "--profiles-dir" in command and '"as_of": "2026-01-31"' in command
    assert run_crm("dbt", home=tmp_path, check=False).returncode == 2


def test_a_second_command_on_a_busy_home_exits_naming_the_running_one(tmp_path):
    """One writer per CRM_HOME: while a command holds the home, another exits 4 at once,
    naming it, and nothing of the home is touched; the lock goes with its holder."""
    from crm.settings import REPO_ROOT

    home = tmp_path / "home"
    holder = subprocess.Popen(
        [
            sys.executable, "-c",
            "import sys, time\n"
            "from crm.home_lock import exclusive_home\n"
            "from crm.settings import get_settings\n"
            "with exclusive_home(get_settings(), 'crm run --as-of 2026-12-01'):\n"
            "    print('held', flush=True); time.sleep(60)\n",
        ],
        env={**os.environ, "CRM_HOME": str(home)},
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        proc = run_crm("run", "--as-of", "2026-11-30", "--no-ml", home=home, check=False)
        assert time.monotonic() - started < 20  # no waiting, no run
        assert proc.returncode == 4
        assert f"{home.resolve()} is in use by `crm run --as-of 2026-12-01` (pid {holder.pid}" in (
            proc.stderr
        )
        assert not (home / "warehouse").exists() and not (home / "airflow").exists()
    finally:
        holder.kill()
        holder.wait()
    # a killed holder leaves no stale lock
    proc = run_crm("generate", "--customers", "5", "--quiet", home=home)
    assert "Demo CRM: 5 customers" in proc.stdout
