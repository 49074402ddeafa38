"""The sales pipelines: each pipeline's stages in order and the stages that close a deal.

A CRM's funnel is configuration, not code. The pipelines file (`CRM_PIPELINES_FILE`, else
`landing/pipelines.yml`, else the built-in `crm/sales_pipelines.yml`) declares::

    default_pipeline: new_business      # for opportunities without a pipeline_id
    pipelines:
      new_business:
        name: New business
        stages: [lead, {qualified: 0.2}, proposal]   # a stage, or {stage: CRM probability}
        closing: {won: won, lost: [lost, no decision], suspended: on hold}

`closing` names, for each way a deal can end, the stage value(s) that mean it: `won`,
`lost`, `suspended` (may be reactivated) and `terminated` (may not). Ingestion accepts
exactly these stage values (ingest/contract.py); before each dbt build the file is written
to `raw.sales_pipeline_stages`, which every funnel model reads, so no model names a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from crm.errors import BadInputError

#: How a deal can end; the contract's opportunity statuses are `open` and these.
CLOSING_KINDS = ("won", "lost", "suspended", "terminated")
#: The table the funnel models read (a dbt source).
STAGES_TABLE = "raw.sales_pipeline_stages"


@dataclass(frozen=True)
class Stage:
    pipeline_id: str
    name: str
    #: 1, 2, ... for the open stages in order; the closing stages come after the last.
    order: int
    #: `open`, or one of CLOSING_KINDS.
    kind: str
    crm_probability: float | None = None
    #: For an open stage: the stage a deal moves to when it advances (the next open stage,
    #: after the last one the first `won` stage).
    next_stage: str | None = None


@dataclass(frozen=True)
class Pipeline:
    pipeline_id: str
    name: str
    stages: tuple[Stage, ...]

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.kind == "open")


@dataclass(frozen=True)
class SalesPipelines:
    pipelines: tuple[Pipeline, ...]
    default_pipeline: str
    source: Path | None = None

    @property
    def stage_values(self) -> tuple[str, ...]:
        """Every stage value any pipeline knows, open and closing, each once."""
        return tuple(dict.fromkeys(s.name for p in self.pipelines for s in p.stages))

    @property
    def pipeline_ids(self) -> tuple[str, ...]:
        return tuple(p.pipeline_id for p in self.pipelines)

    def rows(self) -> list[tuple]:
        """`raw.sales_pipeline_stages` rows (see crm.tables)."""
        return [
            (
                p.pipeline_id,
                p.name,
                p.pipeline_id == self.default_pipeline,
                s.name,
                s.order,
                s.kind,
                s.crm_probability,
                s.next_stage,
            )
            for p in self.pipelines
            for s in p.stages
        ]


def _problem(path: Path | None, message: str) -> BadInputError:
    return BadInputError(f"pipelines file {path or '(built-in)'}: {message}")


def _stage_name(value, path, pipeline_id) -> str:
    """A stage value: text (or a number), not empty; YAML's yes/no/on/off must be quoted."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _problem(
            path,
            f"pipeline {pipeline_id!r}: a stage value is a name, not {value!r}"
            + (" (quote yes, no, on and off)" if isinstance(value, bool) else ""),
        )
    name = str(value).strip()
    if not name:
        raise _problem(path, f"pipeline {pipeline_id!r} has a stage without a name")
    return name


def _stage_entry(entry, path, pipeline_id) -> tuple[str, float | None]:
    if isinstance(entry, dict) and len(entry) == 1:
        ((name, probability),) = entry.items()
    else:
        name, probability = entry, None
    name = _stage_name(name, path, pipeline_id)
    if probability is not None:
        try:
            probability = float(probability)
        except (TypeError, ValueError):
            probability = -1.0
        if not 0 <= probability <= 1:
            raise _problem(
                path,
                f"pipeline {pipeline_id!r}, stage {name!r}: the CRM probability must be a "
                "number from 0 to 1",
            )
    return name, probability


def _pipeline(pipeline_id: str, spec, path) -> Pipeline:
    if not isinstance(spec, dict):
        raise _problem(path, f"pipeline {pipeline_id!r} must hold 'stages' and 'closing'")
    unknown = set(spec) - {"name", "stages", "closing"}
    if unknown:
        raise _problem(
            path,
            f"pipeline {pipeline_id!r}: unknown settings {sorted(unknown)}; "
            "use name, stages and closing",
        )
    entries = spec.get("stages") or []
    if not isinstance(entries, list) or not entries:
        raise _problem(path, f"pipeline {pipeline_id!r} needs a list of stages, in order")
    opened = [_stage_entry(e, path, pipeline_id) for e in entries]
    closing_spec = spec.get("closing") or {}
    if not isinstance(closing_spec, dict) or "won" not in closing_spec:
        raise _problem(
            path,
            f"pipeline {pipeline_id!r}: 'closing' must say which stage value means won "
            f"(and may name lost, suspended, terminated), e.g. closing: {{won: won, lost: lost}}",
        )
    unknown_kinds = set(closing_spec) - set(CLOSING_KINDS)
    if unknown_kinds:
        raise _problem(
            path,
            f"pipeline {pipeline_id!r}: closing kinds {sorted(unknown_kinds)} are not "
            f"known; use {', '.join(CLOSING_KINDS)}",
        )
    closing: list[tuple[str, str]] = []
    for kind in CLOSING_KINDS:
        values = closing_spec.get(kind)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            closing.append((_stage_name(value, path, pipeline_id), kind))
    if not any(k == "won" for _, k in closing):
        raise _problem(path, f"pipeline {pipeline_id!r}: 'closing' names no won stage value")
    names = [n for n, _ in opened] + [n for n, _ in closing]
    folded = [n.casefold() for n in names]
    doubled = sorted({n for n, f in zip(names, folded, strict=True) if folded.count(f) > 1})
    if doubled:
        raise _problem(
            path,
            f"pipeline {pipeline_id!r} names the stage(s) {doubled} more than once "
            "(stage values compare without regard to case)",
        )
    won = next(n for n, k in closing if k == "won")
    stages = [
        Stage(
            pipeline_id,
            name,
            order,
            "open",
            probability,
            next_stage=opened[order][0] if order < len(opened) else won,
        )
        for order, (name, probability) in enumerate(opened, start=1)
    ]
    stages += [Stage(pipeline_id, name, len(opened) + 1, kind) for name, kind in closing]
    return Pipeline(pipeline_id, str(spec.get("name") or pipeline_id), tuple(stages))


def parse(doc, path: Path | None = None) -> SalesPipelines:
    """The pipelines a parsed YAML document declares; BadInputError on any mistake."""
    if not isinstance(doc, dict) or not isinstance(doc.get("pipelines"), dict):
        raise _problem(path, "expected 'pipelines:' holding one section per pipeline")
    unknown = set(doc) - {"pipelines", "default_pipeline"}
    if unknown:
        raise _problem(path, f"unknown settings {sorted(unknown)}")
    pipelines = tuple(
        _pipeline(str(pid).strip(), spec, path) for pid, spec in doc["pipelines"].items()
    )
    if not pipelines:
        raise _problem(path, "declares no pipeline")
    ids = [p.pipeline_id for p in pipelines]
    folded = [i.casefold() for i in ids]
    if not all(ids) or len(set(folded)) < len(ids):
        raise _problem(
            path,
            "pipeline ids must be given and differ other than by case "
            f"(they compare without regard to case): {', '.join(ids)}",
        )
    default = str(doc.get("default_pipeline") or ids[0]).strip()
    if default not in ids:
        raise _problem(
            path, f"default_pipeline {default!r} is not one of the pipelines ({', '.join(ids)})"
        )
    return SalesPipelines(pipelines, default, path)


def load(path: Path) -> SalesPipelines:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _problem(path, f"cannot be read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise _problem(path, f"is not valid YAML: {exc}") from exc
    return parse(doc, path)


def write_stages_table(con, pipelines: SalesPipelines) -> None:
    """Replace `raw.sales_pipeline_stages` with the configured stages (in the caller's
    transaction), unless it holds exactly these already: concurrent builds then write
    nothing."""
    rows = pipelines.rows()
    current = con.execute(
        f"SELECT * FROM {STAGES_TABLE} ORDER BY pipeline_id, stage_order, stage"
    ).fetchall()
    key = sorted(rows, key=lambda r: (r[0], r[4], r[3]))
    if [tuple(r) for r in current] == key:
        return
    con.execute(f"DELETE FROM {STAGES_TABLE}")
    con.executemany(f"INSERT INTO {STAGES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
