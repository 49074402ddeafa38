"""The validation page of a checkpoint run: every expectation, failures first, with the
example rows, as one self-contained HTML file under `reports/validation/`. The run
summary and the run report link to it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from crm.html import STYLE, escape, table
from expectations.outcome import CRITICAL, Outcome


def render(checkpoint: str, run_id: str | None, as_of: date, outcomes: list[Outcome]) -> str:
    failed = [o for o in outcomes if not o.success]
    critical = [o for o in failed if o.severity == CRITICAL]
    verdict = (
        f"{len(critical)} critical failure(s): nothing downstream was published"
        if critical
        else f"passed, {len(failed)} warning(s)"
    )
    order = sorted(outcomes, key=lambda o: (o.success, o.severity != CRITICAL, o.suite, o.batch))
    rows = [
        [
            "ok" if o.success else ("FAILED" if o.severity == CRITICAL else "warning"),
            o.severity,
            o.suite,
            o.batch,
            o.description,
            o.observed,
            "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in o.examples),
        ]
        for o in order
    ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(checkpoint)} checkpoint {escape(as_of)}</title><style>{STYLE}</style>"
        f"</head><body><h1>The {escape(checkpoint)} checkpoint for {escape(as_of)}</h1>"
        f'<p class="muted">run {escape(run_id)} · generated {generated} · '
        f"{len(outcomes)} expectations on {len({(o.suite, o.batch) for o in outcomes})} "
        f"batches</p><p><strong>{escape(verdict)}</strong></p>"
        + table(
            ["result", "severity", "suite", "batch", "expected", "observed", "example rows"],
            rows,
            cls="validation",
        )
        + "</body></html>"
    )


def write_page(
    settings, checkpoint: str, run_id: str | None, as_of: date, outcomes: list[Outcome]
) -> Path:
    from crm.files import atomic_write, safe_name

    folder = settings.reports / "validation"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{as_of.isoformat()}_{safe_name(run_id or 'manual')}_{checkpoint}.html"
    atomic_write(path, render(checkpoint, run_id, as_of, outcomes))
    return path
