"""The shipped process definitions (deploy/: systemd units, docker compose) run the same
Airflow processes as `crm deployment`, each restarted when it dies, from one environment."""

from __future__ import annotations

import configparser

import yaml

from crm.deployment import Deployment
from crm.settings import REPO_ROOT, get_settings

DEPLOY = REPO_ROOT / "deploy"


def airflow_commands() -> dict[str, str]:
    """`crm deployment`'s processes (one worker) as their Airflow subcommand."""
    procs = Deployment(get_settings())._processes(workers=1)
    return {
        name.removesuffix("-1"): " ".join(cmd[1:3] if cmd[1] == "celery" else cmd[1:2])
        for name, cmd in procs.items()
    }


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / name)
    return parser


def test_every_process_has_a_systemd_unit_that_restarts_it():
    units = {
        "scheduler": "crm-airflow-scheduler.service",
        "dag-processor": "crm-airflow-dag-processor.service",
        "triggerer": "crm-airflow-triggerer.service",
        "api-server": "crm-airflow-api-server.service",
        "worker": "crm-airflow-worker@.service",
    }
    commands = airflow_commands()
    assert set(commands) == set(units)
    target = unit("crm-airflow.target")["Unit"]["Wants"].split()
    for process, name in units.items():
        service = unit(name)["Service"]
        assert service["ExecStart"].startswith(
            f"/opt/crm-analytics/.venv/bin/airflow {commands[process]}"
        ), name
        assert service["Restart"] == "always" and service["EnvironmentFile"], name
        assert name in target or name.endswith("@.service")
    worker = unit("crm-airflow-worker@.service")["Service"]
    assert worker["Environment"] == "CRM_WORKER_NAME=worker-%i"
    assert "worker-%i@%%h" in worker["ExecStart"]  # %%: systemd's escape for Celery's %h


def test_the_compose_file_runs_the_same_processes_from_one_environment():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for process, command in airflow_commands().items():
        service = services[process]
        shown = (
            service["command"]
            if isinstance(service["command"], str)
            else " ".join(service["command"])
        )
        assert f"airflow {command}" in shown, process
        assert service["restart"] == "always", process
        assert service["env_file"] == "airflow.env", process
        assert service["volumes"] == ["crm-home:/srv/crm"], process
        assert service["depends_on"]["airflow-init"]["condition"] == (
            "service_completed_successfully"
        )
    assert "airflow db migrate" in services["airflow-init"]["command"]
    assert "pools set warehouse_writer 1" in services["airflow-init"]["command"]
    example = (DEPLOY / "systemd" / "airflow.env.example").read_text()
    for variable in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET"):
        assert f"{variable}=" in example
