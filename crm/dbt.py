"""Run dbt as one `dbt build` subprocess and report what it built.

A subprocess rather than dbt's Python runner: dbt keeps global state (adapters, logging)
that does not belong in a long-lived Airflow worker, and the process exit releases the
DuckDB write lock for certain. The result comes from dbt's own `run_results.json`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from crm.errors import CrmError, WarehouseLockedError
from crm.settings import Settings, get_settings


class DbtBuildError(CrmError):
    """dbt failed; the message lists the failing nodes."""


@dataclass
class DbtResult:
    models: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    errors: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    model_seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def _summarise(run_results: Path) -> DbtResult:
    result = DbtResult()
    if not run_results.exists():
        return result
    doc = json.loads(run_results.read_text())
    for node in doc.get("results", []):
        unique_id = node.get("unique_id", "")
        status = node.get("status")
        kind = unique_id.split(".")[0]
        if kind == "model":
            if status == "success":
                result.models += 1
                result.model_seconds[unique_id.split(".")[-1]] = round(
                    node.get("execution_time", 0.0), 3
                )
            else:
                result.errors += 1
        elif kind in ("test", "unit_test"):
            if status == "pass":
                result.tests_passed += 1
            elif status == "warn":
                result.tests_warned += 1
                result.warnings.append(f"{unique_id.split('.')[-2]}: {node.get('message')}")
            else:
                result.tests_failed += 1
        elif status in ("error", "fail"):
            result.errors += 1
    return result


def build(
    as_of: date,
    select: str | None = None,
    settings: Settings | None = None,
    full_refresh: bool = False,
    log_file: Path | None = None,
) -> DbtResult:
    """`dbt build` for one as-of date; raises `DbtBuildError` naming what failed."""
    settings = settings or get_settings()
    settings.ensure_dirs()
    args = [
        dbt_executable(),
        "build",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        settings.dbt_target,
        "--vars",
        json.dumps({"as_of": as_of.isoformat()}),
        "--no-use-colors",
    ]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    run_results = settings.dbt_state_dir / "target" / "run_results.json"
    run_results.unlink(missing_ok=True)  # never report a previous build's results
    started = time.perf_counter()
    proc = subprocess.run(
        args,
        cwd=settings.dbt_project_dir,
        env=settings.child_env(),
        capture_output=True,
        text=True,
    )
    output = proc.stdout + proc.stderr
    log_file = log_file or settings.dbt_state_dir / "last_build.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(output)
    result = _summarise(run_results)
    result.seconds = round(time.perf_counter() - started, 3)
    if proc.returncode != 0:
        if "Could not set lock on file" in output:
            raise WarehouseLockedError(
                f"dbt could not open the warehouse {settings.warehouse_path}: another process "
                "holds the DuckDB write lock. Retry when it is released."
            )
        failing = [
            line.strip()
            for line in output.splitlines()
            if ("ERROR" in line or "FAIL" in line) and "Completed" not in line
        ][:15]
        raise DbtBuildError(
            f"dbt build failed (exit {proc.returncode}); {result.errors} errors, "
            f"{result.tests_failed} failing tests. Log: {log_file}\n" + "\n".join(failing)
        )
    return result
