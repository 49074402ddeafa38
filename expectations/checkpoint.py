"""Run a suite on a frame with a GX checkpoint, keep the results in `audit.validation_results`,
and stop the run when a critical expectation failed.

Every expectation carries GX's own `severity`: `critical` stops the run before anything
downstream is built or published, naming the expectation, the entity and example rows;
`warning` is recorded and shown in the run summary and report, and the run goes on.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from itertools import count
from pathlib import Path

import pandas as pd

from crm.tables import ensure_audit
from expectations.outcome import (
    CRITICAL,
    EXAMPLES,
    CriticalExpectationFailed,
    ExpectationError,
    Outcome,
)
from expectations.report import write_page

RESULT_COLUMNS = (
    "run_id",
    "as_of",
    "checkpoint",
    "suite",
    "batch",
    "expectation",
    "column_name",
    "description",
    "severity",
    "success",
    "observed",
    "unexpected_count",
    "unexpected_percent",
    "examples",
    "validated_at",
)


_context = None
_names = count(1)


def _gx_context():
    """One ephemeral GX context per process (no files, no analytics, no progress bars)."""
    global _context
    if _context is None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _context = gx.get_context(mode="ephemeral")
        _context.variables.progress_bars = ProgressBarsConfig(globally=False)
        _context.data_sources.add_pandas("crm_frames")
    return _context


def mask_personal(value) -> str:
    """A personal value shown as its first character and its shape (`j***@***.com`)."""
    text = str(value)
    if "@" in text:
        domain = text.rsplit(".", 1)[-1] if "." in text.rsplit("@", 1)[-1] else ""
        return f"{text[:1]}***@***" + (f".{domain}" if domain else "")
    return f"{text[:1]}***" if text else text


def _shown(value, personal: bool) -> str | None:
    if value is None or pd.isna(value):
        return None
    return mask_personal(value) if personal else str(value)


def _examples(
    frame: pd.DataFrame, column: str | None, unexpected: list, id_columns, personal=()
) -> list:
    """Rows of the frame that show the failure: the ids and the offending value (personal
    columns masked: examples go to reports and tables that BI may read)."""
    if not column or column not in frame.columns or not unexpected:
        return []
    values = [v for v in unexpected if v is not None and not pd.isna(v)]
    mask = frame[column].isin(values)
    if len(values) < len(unexpected):
        mask |= frame[column].isna()
    keep = [c for c in dict.fromkeys([*id_columns, column]) if c in frame.columns]
    rows = frame.loc[mask, keep].head(EXAMPLES)
    return [
        {k: _shown(v, k in personal) for k, v in row.items()} for row in rows.to_dict("records")
    ]


def _figure(value) -> str:
    if value is None or pd.isna(value):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _observed(result: dict) -> str:
    if "observed_value" in result:
        return _figure(result["observed_value"])
    if "unexpected_count" in result:
        n = int(result.get("unexpected_count") or 0)
        pct = float(result.get("unexpected_percent") or 0.0)
        return f"{n:,} unexpected value(s) ({pct:.2f}% of non-null)"
    return "-"


def run_suite(
    checkpoint: str,
    suite: str,
    batch: str,
    expectations: list,
    frame: pd.DataFrame,
    id_columns: tuple[str, ...] = (),
    personal: tuple[str, ...] = (),
    figures: bool = False,
) -> list[Outcome]:
    """Validate `frame` against `expectations` (GX expectation objects) through a GX
    checkpoint; one Outcome per expectation. `figures`: the frame is one row of batch
    figures, and an outcome says the figure. An expectation GX could not evaluate is an
    error of ours, not of the data: it raises (and the task retries), it rejects nothing."""
    if not expectations:
        return []
    import great_expectations as gx

    context = _gx_context()
    n = next(_names)
    source = context.data_sources.get("crm_frames")
    asset = source.add_dataframe_asset(f"{suite}_{n}")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole frame")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=f"{suite}_{n}"))
    for expectation in expectations:
        gx_suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite}_{n}", data=batch_definition, suite=gx_suite)
    )
    runner = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{checkpoint}_{n}",
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
        )
    )
    try:
        run = runner.run(batch_parameters={"dataframe": frame})
    finally:
        context.checkpoints.delete(runner.name)
        context.validation_definitions.delete(definition.name)
        context.suites.delete(gx_suite.name)
        source.delete_asset(asset.name)
    outcomes = []
    for validation in run.run_results.values():
        for r in validation.results:
            config = r.expectation_config
            column = config.kwargs.get("column")
            result = dict(r.result or {})
            if (r.exception_info or {}).get("raised_exception"):
                raise ExpectationError(
                    f"{suite}: GX could not evaluate {config.type} on {column}: "
                    f"{r.exception_info.get('exception_message')}"
                )
            observed = _observed(result)
            if figures and column in frame.columns:
                observed = _figure(frame[column].iloc[0])
            outcomes.append(
                Outcome(
                    checkpoint=checkpoint,
                    suite=suite,
                    batch=batch,
                    expectation=config.type,
                    column_name=column,
                    description=config.description or config.type,
                    severity=str(getattr(config.severity, "value", config.severity)).lower(),
                    success=bool(r.success),
                    observed=observed,
                    unexpected_count=result.get("unexpected_count"),
                    unexpected_percent=result.get("unexpected_percent"),
                    examples=[]
                    if r.success
                    else _examples(
                        frame,
                        column,
                        result.get("partial_unexpected_list") or [],
                        id_columns,
                        personal,
                    ),
                )
            )
    return outcomes


def record(con, run_id: str | None, as_of: date, checkpoint: str, outcomes: list[Outcome]):
    """Replace this run's results of the checkpoint (a retried task leaves one set)."""
    ensure_audit(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = pd.DataFrame(
        [
            {
                **{k: v for k, v in o.as_dict().items() if k != "examples"},
                "examples": json.dumps(o.examples) if o.examples else None,
                "run_id": run_id,
                "as_of": as_of,
                "validated_at": now,
            }
            for o in outcomes
        ],
        columns=list(RESULT_COLUMNS),
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "DELETE FROM audit.validation_results WHERE run_id IS NOT DISTINCT FROM ? "
            "AND checkpoint = ? AND as_of = ?",
            [run_id, checkpoint, as_of],
        )
        if len(rows):
            con.register("validation_rows", rows)
            con.execute(
                f"INSERT INTO audit.validation_results SELECT {', '.join(RESULT_COLUMNS)} "
                "FROM validation_rows"
            )
            con.unregister("validation_rows")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def summarise(outcomes: list[Outcome]) -> dict:
    """Counts for the run summary, and the failures in words."""
    failed = [o for o in outcomes if not o.success]
    return {
        "expectations": len(outcomes),
        "suites": len({(o.suite, o.batch) for o in outcomes}),
        "passed": len(outcomes) - len(failed),
        "critical_failed": [o.line() for o in failed if o.severity == CRITICAL],
        "warnings": [o.line() for o in failed if o.severity != CRITICAL],
    }


def raise_on_critical(outcomes: list[Outcome], what: str, page: Path | None = None) -> None:
    critical = [o for o in outcomes if not o.success and o.severity == CRITICAL]
    if critical:
        lines = "\n".join(f"  - {o.line()}" for o in critical)
        where = f"{page} and " if page else ""
        raise CriticalExpectationFailed(
            f"{what}: {len(critical)} critical expectation(s) failed, nothing downstream "
            f"is built or published:\n{lines}\n(all results: {where}audit.validation_results)"
        )


def conclude(
    con,
    settings,
    checkpoint: str,
    run_id: str | None,
    as_of: date,
    outcomes: list[Outcome],
    recorded: bool = False,
) -> dict:
    """Record the results (unless `recorded`), write the validation page, and stop on a
    critical failure; otherwise the summary (counts, warnings, the page)."""
    if not recorded:
        record(con, run_id, as_of, checkpoint, outcomes)
    page = write_page(settings, checkpoint, run_id, as_of, outcomes)
    raise_on_critical(outcomes, f"the {checkpoint} checkpoint", page)
    return {**summarise(outcomes), "page": str(page)}
