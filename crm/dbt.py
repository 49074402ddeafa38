"""Run dbt as one `dbt build` subprocess and report what it built.

A subprocess rather than dbt's Python runner: dbt keeps global state (adapters, logging)
that does not belong in a long-lived Airflow worker, and the process exit releases the
DuckDB write lock for certain. The result comes from dbt's own `run_results.json`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

from crm.errors import CrmError, WarehouseLockedError
from crm.files import atomic_copy
from crm.settings import Settings, get_settings

#: The models that need the CLV fit (written by ml/clv.py between the two dbt phases of a
#: run) and everything downstream of them: built in the second phase.
CUSTOMER_360 = "source:ml.customer_lifetime_values+"
#: The target-customer feature and label marts, built by the ML DAGs for the dates they need.
ML_MARTS = "tag:ml"


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


#: How long a dbt command waits for another process to let go of the warehouse file.
LOCK_WAIT_S = 60.0


def dbt_command(
    command: list[str], as_of: date, settings: Settings, extra_vars: dict | None = None
) -> list[str]:
    """A dbt command line with this project, its profile and target, and the as-of date
    (and `extra_vars`) as vars: what every run uses, and `crm dbt` for a person."""
    return [
        dbt_executable(),
        *command,
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        settings.dbt_target,
        "--vars",
        json.dumps(
            {
                "as_of": as_of.isoformat(),
                "sales_pipelines": pipelines_described(settings),
                **(extra_vars or {}),
            },
            ensure_ascii=False,
        ),
    ]


def pipelines_described(settings: Settings) -> str:
    """The configured sales pipelines in one line, for the docs page (the funnel models'
    descriptions show it): "Sales (sales): lead → qualified → ... → won; lost: lost"."""
    from crm import sales_pipelines

    described = []
    for pipeline in sales_pipelines.load(settings.pipelines_path).pipelines:
        path = " → ".join(s.name for s in pipeline.open_stages)
        ends = {}
        for stage in pipeline.stages:
            if stage.kind != "open":
                ends.setdefault(stage.kind, []).append(stage.name)
        closing = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in ends.items())
        described.append(f"{pipeline.name} ({pipeline.pipeline_id}): {path}; {closing}")
    return " | ".join(described)


#: What an invocation leaves in the shared `target/` for people (`crm dbt`, the last
#: results, the parse cache the next invocation starts from).
SHARED_ARTIFACTS = ("run_results.json", "manifest.json", "partial_parse.msgpack")


#: An invocation folder untouched this long belongs to a process that was killed (a build
#: writes its logs and artifacts as it goes; tasks time out long before).
STALE_INVOCATION_S = 24 * 3600.0


def sweep_stale_invocations(root: Path, now: float | None = None) -> list[str]:
    """Remove invocation folders left by killed processes (nothing written in them for
    `STALE_INVOCATION_S`); returns their names."""
    now = time.time() if now is None else now
    removed = []
    for folder in root.iterdir():
        try:
            newest = max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.rglob("*"))])
        except OSError:  # removed by its own process meanwhile
            continue
        if now - newest > STALE_INVOCATION_S:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


@contextmanager
def invocation_target(settings: Settings, name: str) -> Iterator[Path]:
    """A target folder of one dbt invocation's own, under `dbt/invocations/`.

    Two invocations on one home (a run and a person's `crm dbt`, or two runs before the
    home lock existed) once shared `target/`: one read the other's `run_results.json`
    and reported its model count. Each now writes its own folder, seeded with the last
    parse cache so it does not parse the project from scratch; afterwards its artifacts
    are copied to `target/` (each file replaced atomically) and the folder is removed.
    """
    shared = settings.dbt_state_dir / "target"
    root = settings.dbt_state_dir / "invocations"
    root.mkdir(parents=True, exist_ok=True)
    sweep_stale_invocations(root)
    target = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
    cache = shared / "partial_parse.msgpack"
    if cache.exists():
        shutil.copyfile(cache, target / cache.name)
    try:
        yield target
    finally:
        shared.mkdir(parents=True, exist_ok=True)
        for artifact in SHARED_ARTIFACTS:
            if (target / artifact).exists():
                atomic_copy(target / artifact, shared / artifact)
        shutil.rmtree(target, ignore_errors=True)


def _invoke(
    command: list[str],
    as_of: date,
    settings: Settings,
    log_name: str,
    target: Path,
    extra_vars: dict | None = None,
):
    """Run one dbt command for `as_of`, writing its artifacts to `target`; returns (exit
    code, output, log file)."""
    args = [*dbt_command(command, as_of, settings, extra_vars), "--no-use-colors"]
    env = {**settings.child_env(), "DBT_TARGET_PATH": str(target)}
    # dbt cannot wait for DuckDB's file lock: when a reader (an analyst's read-only
    # session) holds it at the moment dbt opens the file, try again for a while, as the
    # platform's own connections do (the lock is taken before any model is built)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        proc = subprocess.run(
            args,
            cwd=settings.dbt_project_dir,
            env=env,
            capture_output=True,
            text=True,
        )
        output = proc.stdout + proc.stderr
        locked = proc.returncode != 0 and "Could not set lock on file" in output
        if not locked or time.monotonic() >= deadline:
            break
        time.sleep(2)
    log_file = settings.dbt_state_dir / log_name
    log_file.parent.mkdir(parents=True, exist_ok=True)
    partial = target / log_name  # whole, even when two invocations finish together
    partial.write_text(output)
    partial.replace(log_file)
    if locked:
        raise WarehouseLockedError(
            f"dbt could not open the warehouse {settings.warehouse_path}: another process "
            "holds the DuckDB write lock. Retry when it is released."
        )
    return proc.returncode, output, log_file


def ensure_sources(settings: Settings) -> None:
    """The tables Python writes that models read (crm/tables.py), made before dbt opens
    the warehouse: a view on a table that does not exist cannot be made. The sales
    pipelines file is written as `raw.sales_pipeline_stages` here, so every build follows
    the file as it is now (a broken file stops the build, naming the mistake)."""
    import duckdb

    from crm import sales_pipelines
    from crm.tables import ensure_dbt_sources
    from crm.warehouse import session

    pipelines = sales_pipelines.load(settings.pipelines_path)
    for attempt in range(3):
        try:
            with session(settings=settings) as con:
                ensure_dbt_sources(con)
                con.execute("BEGIN")
                sales_pipelines.write_stages_table(con, pipelines)
                con.execute("COMMIT")
            return
        except (duckdb.TransactionException, duckdb.CatalogException):
            # two builds of one process (threads) made or moved the same table at the same
            # moment: look again, the other one's work is there now
            if attempt == 2:
                raise
            time.sleep(0.2)


def build(
    as_of: date,
    select: str | None = None,
    exclude: str | None = None,
    settings: Settings | None = None,
    full_refresh: bool = False,
    extra_vars: dict | None = None,
) -> DbtResult:
    """`dbt build` for one as-of date; raises `DbtBuildError` naming what failed.

    dbt's unit tests check the models' logic on fixed rows, so the data of a run cannot
    change their result: runs leave them out, the test suite runs them (`unit_tests`).
    """
    settings = settings or get_settings()
    settings.ensure_dirs()
    if settings.dbt_target == "duckdb":
        ensure_sources(settings)
    command = ["build"]
    if select:
        command += ["--select", select]
    if exclude:
        command += ["--exclude", exclude]
    command += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        command.append("--full-refresh")
    started = time.perf_counter()
    with invocation_target(settings, "build") as target:
        code, output, log_file = _invoke(
            command, as_of, settings, "last_build.log", target, extra_vars
        )
        result = _summarise(target / "run_results.json")
    result.seconds = round(time.perf_counter() - started, 3)
    if code != 0:
        lines = output.splitlines()
        failing = [
            line.strip()
            for line in lines
            if ("ERROR" in line or "FAIL" in line) and "Completed" not in line
        ][:15]
        # an error before any model ran (a compilation error, a bad var): dbt's own words
        stopped = [i for i, line in enumerate(lines) if "Encountered an error" in line]
        if stopped:
            failing += [line.strip() for line in lines[stopped[0] + 1 : stopped[0] + 4]]
        raise DbtBuildError(
            f"dbt build failed (exit {code}); {result.errors} errors, "
            f"{result.tests_failed} failing tests. Log: {log_file}\n" + "\n".join(failing)
        )
    return result


def unit_tests(as_of: date, settings: Settings | None = None) -> DbtResult:
    """dbt's unit tests (`dbt test --select test_type:unit`); they need the models'
    parents built in the warehouse."""
    settings = settings or get_settings()
    with invocation_target(settings, "unit_tests") as target:
        code, _, log_file = _invoke(
            ["test", "--select", "test_type:unit"], as_of, settings, "last_unit_tests.log", target
        )
        result = _summarise(target / "run_results.json")
    if code != 0:
        raise DbtBuildError(f"dbt unit tests failed ({result.tests_failed}); log: {log_file}")
    return result


def project_fingerprint(settings: Settings) -> str:
    """sha256 of what the docs site is made of: the project's files, dbt's version, the
    target and the sales pipelines. The warehouse's data does not appear on it."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(f"{version('dbt-core')} {settings.dbt_target}".encode())
    digest.update(pipelines_described(settings).encode())  # the page shows the pipelines
    root = settings.dbt_project_dir
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.relative_to(root).parts[0] not in ("target", "logs"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def generate_docs(as_of: date, settings: Settings | None = None) -> dict:
    """The dbt docs site as one self-contained page, `reports/dbt_docs/index.html`; only
    when the project changed since the page was made (it takes seconds every run)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    target = settings.reports / "dbt_docs" / "index.html"
    stamp = target.with_name(".fingerprint")
    fingerprint = project_fingerprint(settings)
    if target.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return {
            "path": str(target),
            "skipped": "the project has not changed since the page was made",
            "seconds": round(time.perf_counter() - started, 3),
        }
    with invocation_target(settings, "docs") as dbt_target:
        code, output, log_file = _invoke(
            ["docs", "generate", "--static"], as_of, settings, "last_docs.log", dbt_target
        )
        page = dbt_target / "static_index.html"
        if code != 0 or not page.exists():
            raise DbtBuildError(f"dbt docs generate failed (exit {code}); log: {log_file}")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_copy(page, target)
    stamp.write_text(fingerprint)
    return {"path": str(target), "seconds": round(time.perf_counter() - started, 3)}
